#!/bin/sh
# Runs the app from the published tree (the container's command starts this once gkube has published it).
# The working directory is the volume, not `current`: cd would resolve the link to one release directory,
# which a later publish removes.
set -e
cd /srv/app
exec node /srv/app/current/server.mjs
