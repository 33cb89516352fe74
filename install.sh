#!/bin/sh
# Installs remote into $PREFIX/bin (default ~/.local/bin), from a checkout or from a release:
# `sh install.sh --help` (the usage() text below) says how.
set -eu

usage() {
  cat <<'USAGE'
usage: install.sh [--prefix DIR] [--version X.Y.Z]

Installs remote into DIR/bin (default ~/.local/bin).

From a checkout:  sh install.sh [--prefix DIR]
  Builds the binary with `deno compile` (the pinned Deno, fetched from the npm registry when absent).
  When the compile cannot get Deno's runtime (no network to the Deno release host, DENORT_BIN unset),
  installs a launcher that runs the same program, bundled, with the pinned Deno; the bundle and the
  PTY addon it needs go to DIR/share/remote.
From a release:   curl -fsSL https://github.com/remote-cli/remote/releases/latest/download/install.sh | sh
  Downloads the prebuilt binary for this OS and CPU, verifies its SHA-256 checksum, installs it.

Options:
  --prefix DIR       install into DIR/bin (default ~/.local)
  --version X.Y.Z    the release to download (default: the latest); ignored in a checkout
  -h, --help         print this help
Environment: REMOTE_REPO=owner/name downloads from another repository.
USAGE
}

prefix="${HOME:?HOME is not set}/.local"
version="latest"
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --version) version="${2:?--version needs a version, e.g. 0.1.0}"; shift 2 ;;
    --version=*) version="${1#--version=}"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; echo "hint: install.sh [--prefix DIR] [--version X.Y.Z]" >&2; exit 2 ;;
  esac
done
bindir="$prefix/bin"
target="$bindir/remote"
say() { printf 'remote install: %s\n' "$*" >&2; }

path_hint() {
  case ":$PATH:" in
    *":$bindir:"*) ;;
    *) say "$bindir is not on your PATH; add it with: export PATH=\"$bindir:\$PATH\"" ;;
  esac
}

checkout=""
case "$0" in
  */install.sh | install.sh) here="$(cd "$(dirname "$0")" && pwd)"; [ -f "$here/main.ts" ] && [ -f "$here/deno.json" ] && checkout="$here" ;;
esac

if [ -n "$checkout" ]; then
  cd "$checkout"
  deno="$(sh scripts/deno.sh)"
  "$deno" install --frozen >/dev/null 2>&1 || "$deno" install --frozen
  mkdir -p "$bindir"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  if "$deno" compile --quiet --allow-all --output "$tmp/remote" main.ts >"$tmp/compile.log" 2>&1; then
    mv -f "$tmp/remote" "$target"
    # a launcher installed here before leaves its bundle and addon behind: the binary carries both
    rm -rf "$prefix/share/remote/remote.js" "$prefix/share/remote/node_modules"
    say "built $target with deno compile"
  else
    if grep -q 'denort' "$tmp/compile.log"; then
      say "deno compile cannot get its runtime (no network to the Deno release host, DENORT_BIN unset); installing a launcher instead"
    else
      say "deno compile failed ($(tail -n 1 "$tmp/compile.log")); installing a launcher instead"
    fi
    share="$prefix/share/remote"
    mkdir -p "$share"
    # the bundle, and beside it in node_modules/ the PTY addon that cannot travel inside it
    "$deno" run --allow-all scripts/bundle.ts --output "$tmp/bundle/remote.js" 2>"$tmp/bundle.log" || {
      cat "$tmp/bundle.log" >&2
      say "cannot bundle remote; nothing installed"
      exit 1
    }
    rm -rf "$share/node_modules"
    mv "$tmp/bundle/node_modules" "$share/node_modules"
    mv -f "$tmp/bundle/remote.js" "$share/remote.js"
    cat >"$tmp/launcher" <<LAUNCHER
#!/bin/sh
# remote launcher: the bundled program run by the pinned Deno (installed by install.sh).
exec "$deno" run --allow-all --no-config --no-lock --quiet "$share/remote.js" "\$@"
LAUNCHER
    chmod 0755 "$tmp/launcher"
    mv -f "$tmp/launcher" "$target"
    say "installed $target (launcher for $share/remote.js, Deno at $deno)"
  fi
  path_hint
  exit 0
fi

repo="${REMOTE_REPO:-remote-cli/remote}"
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) asset=remote-x86_64-unknown-linux-gnu ;;
  Linux-aarch64 | Linux-arm64) asset=remote-aarch64-unknown-linux-gnu ;;
  Darwin-x86_64) asset=remote-x86_64-apple-darwin ;;
  Darwin-arm64) asset=remote-aarch64-apple-darwin ;;
  *) say "no prebuilt binary for $(uname -s)-$(uname -m)"; say "build from source: git clone https://github.com/$repo && sh remote/install.sh"; exit 1 ;;
esac
if [ "$version" = latest ]; then
  base="https://github.com/$repo/releases/latest/download"
else
  base="https://github.com/$repo/releases/download/v${version#v}"
fi
fetch() {
  if command -v curl >/dev/null 2>&1; then curl -fsSL -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then wget -q -O "$2" "$1"
  else say "neither curl nor wget is installed"; exit 1
  fi
}
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
say "downloading $asset ($version) from github.com/$repo"
fetch "$base/$asset" "$tmp/$asset" || { say "download failed: $base/$asset"; exit 1; }
fetch "$base/SHA256SUMS" "$tmp/SHA256SUMS" || { say "download failed: $base/SHA256SUMS"; exit 1; }
expected="$(grep " $asset\$" "$tmp/SHA256SUMS" | cut -d ' ' -f 1)"
if command -v sha256sum >/dev/null 2>&1; then actual="$(sha256sum "$tmp/$asset" | cut -d ' ' -f 1)"
else actual="$(shasum -a 256 "$tmp/$asset" | cut -d ' ' -f 1)"
fi
if [ -z "$expected" ] || [ "$expected" != "$actual" ]; then
  say "checksum mismatch for $asset (expected ${expected:-none}, got $actual); nothing installed"
  exit 1
fi
mkdir -p "$bindir"
chmod 0755 "$tmp/$asset"
mv -f "$tmp/$asset" "$target"
say "installed $target ($version, sha256 $actual)"
path_hint
