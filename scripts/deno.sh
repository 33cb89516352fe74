#!/bin/sh
# Prints the path of the pinned Deno, installing it first when needed.
#
# Uses `deno` from PATH when it is the pinned version; otherwise installs the pinned version from the
# npm registry package `deno` (which carries the real binary per platform) into a user-local folder,
# without root, touching nothing else. Shared by install.sh and scripts/test.sh.
#
#   DENO="$(sh scripts/deno.sh)" && "$DENO" --version
set -eu

DENO_VERSION="${REMOTE_DENO_VERSION:-2.9.6}"
data_home="${XDG_DATA_HOME:-${HOME:?HOME is not set}/.local/share}"
dir="${REMOTE_DENO_DIR:-$data_home/remote/deno-$DENO_VERSION}"

is_pinned() {
  "$1" --version 2>/dev/null | head -n 1 | grep -q "^deno $DENO_VERSION "
}

if command -v deno >/dev/null 2>&1 && is_pinned "$(command -v deno)"; then
  command -v deno
  exit 0
fi
if [ -x "$dir/bin/deno" ] && is_pinned "$dir/bin/deno"; then
  printf '%s\n' "$dir/bin/deno"
  exit 0
fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) pkg=linux-x64-glibc ;;
  Linux-aarch64 | Linux-arm64) pkg=linux-arm64-glibc ;;
  Darwin-x86_64) pkg=darwin-x64 ;;
  Darwin-arm64) pkg=darwin-arm64 ;;
  *)
    echo "remote: no Deno build on npm for $(uname -s)-$(uname -m)" >&2
    echo "hint: install Deno $DENO_VERSION yourself and put it on PATH" >&2
    exit 1
    ;;
esac
if ! command -v npm >/dev/null 2>&1; then
  echo "remote: Deno $DENO_VERSION is not installed and npm is not there to fetch it" >&2
  echo "hint: install Node.js and npm, or Deno $DENO_VERSION on PATH" >&2
  exit 1
fi

echo "remote: installing Deno $DENO_VERSION from the npm registry into $dir" >&2
mkdir -p "$dir/npm" "$dir/bin"
# --ignore-scripts: the package's postinstall only copies the binary we link to ourselves.
if ! npm install --prefix "$dir/npm" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
  --loglevel=error "deno@$DENO_VERSION" "@deno/$pkg@$DENO_VERSION" >&2; then
  echo "remote: npm could not install deno@$DENO_VERSION" >&2
  echo "hint: check that the npm registry is reachable (npm ping)" >&2
  exit 1
fi
bin="$dir/npm/node_modules/@deno/$pkg/deno"
chmod +x "$bin"
ln -sf "$bin" "$dir/bin/deno"
if ! is_pinned "$dir/bin/deno"; then
  echo "remote: the installed Deno at $bin does not run" >&2
  exit 1
fi
printf '%s\n' "$dir/bin/deno"
