#!/bin/sh
# Runs the app from the published tree (the container's command starts this once gkube has published it).
# The working directory is the volume, not `current`: cd would resolve the link to one release directory,
# which a later publish removes.
set -e
# A reload (SIGHUP) that comes before the server has its handler is ignored, never fatal: the server reads
# the files as it starts.
trap '' HUP
cd /srv/app
exec node /srv/app/current/server.mjs
