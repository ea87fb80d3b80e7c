#!/bin/sh
# Runs the app from the published tree (the container's command starts this once gkube has published it).
set -e
cd /srv/app/current
exec node /srv/app/current/server.mjs
