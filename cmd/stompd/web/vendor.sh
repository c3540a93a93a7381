#!/usr/bin/env bash
# Copies the browser STOMP client, and the SockJS client the pages load on ?transport=sockjs, into
# static/vendor/, where the Go package embeds them, so that stompd serves its pages with no network at
# run time. The copied files are committed; node_modules is not.
#
# The version is pinned by package.json and package-lock.json. To upgrade:
#   1. set the new exact version of @stomp/stompjs or sockjs-client in package.json (and in
#      test/js/package.json, whose copies the Go tests compare byte for byte with ours);
#   2. npm install --package-lock-only --ignore-scripts, here and in test/js;
#   3. run this script, then test/run; commit package.json, package-lock.json and static/vendor/.
set -euo pipefail
cd "$(dirname "$0")"

PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

pkg=node_modules/@stomp/stompjs
mkdir -p static/vendor
cp "$pkg/bundles/stomp.umd.min.js" static/vendor/stomp.umd.min.js
cp "$pkg/LICENSE" static/vendor/LICENSE
echo "vendored @stomp/stompjs $(node -p "require('./$pkg/package.json').version") into static/vendor/"

pkg=node_modules/sockjs-client
mkdir -p static/vendor/sockjs
cp "$pkg/dist/sockjs.min.js" static/vendor/sockjs/sockjs.min.js
cp "$pkg/LICENSE" static/vendor/sockjs/LICENSE
echo "vendored sockjs-client $(node -p "require('./$pkg/package.json').version") into static/vendor/"
