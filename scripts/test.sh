#!/bin/sh
# The test command (README.md, .ci/run): installs what the tests need, then checks, lints and tests.
#
# Real peers come from Debian's archive when missing (OpenSSH server, Dropbear, tmux, shellcheck, Docker Engine,
# Podman, busybox-static for the containers' image, zsh and fish for the completion scripts), PowerShell from NuGet as a .NET global tool; Deno comes from the
# npm registry through scripts/deno.sh. Prints "N passed, N failed" last.
set -eu
cd "$(dirname "$0")/.."

need_packages=""
command -v /usr/sbin/sshd >/dev/null 2>&1 || need_packages="$need_packages openssh-server"
command -v ssh-keygen >/dev/null 2>&1 || need_packages="$need_packages openssh-client"
command -v dropbear >/dev/null 2>&1 || [ -x /usr/sbin/dropbear ] || need_packages="$need_packages dropbear-bin"
command -v tmux >/dev/null 2>&1 || need_packages="$need_packages tmux"
command -v shellcheck >/dev/null 2>&1 || need_packages="$need_packages shellcheck"
command -v openssl >/dev/null 2>&1 || need_packages="$need_packages openssl"
command -v curl >/dev/null 2>&1 || need_packages="$need_packages curl"
# the completion scripts are run in each shell they are written for
command -v zsh >/dev/null 2>&1 || need_packages="$need_packages zsh"
command -v fish >/dev/null 2>&1 || need_packages="$need_packages fish"
# the WebAssembly Poly1305's test rebuilds it from its C source when a wasm32 clang and linker are here
command -v clang-14 >/dev/null 2>&1 || need_packages="$need_packages clang-14"
command -v wasm-ld-14 >/dev/null 2>&1 || need_packages="$need_packages lld-14"
# kubectl drives the example plugin's test; this kind of machine ships one, Debian's kubernetes-client otherwise
command -v kubectl >/dev/null 2>&1 || need_packages="$need_packages kubernetes-client"
# pywinrm, the reference WinRM client the WinRM test server is checked against (Debian's python3)
/usr/bin/python3 -c "import winrm" >/dev/null 2>&1 || need_packages="$need_packages python3-winrm"
[ -x /usr/sbin/dockerd ] || need_packages="$need_packages docker.io"
[ -x /usr/bin/podman ] || need_packages="$need_packages podman"
# the containers' image needs the static busybox; Debian's plain busybox package is linked dynamically
dpkg-query -W -f '${Status}' busybox-static 2>/dev/null | grep -q "ok installed" ||
  need_packages="$need_packages busybox-static"
if [ -n "$need_packages" ]; then
  if [ "$(id -u)" = 0 ]; then
    as_root=""
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root="sudo -n"
  else
    echo "remote tests: missing packages:$need_packages" >&2
    echo "hint: install them with: sudo apt-get install$need_packages" >&2
    exit 1
  fi
  echo "remote tests: installing$need_packages from Debian's archive" >&2
  $as_root apt-get update -qq >&2
  # shellcheck disable=SC2086 # the list is meant to split into words
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq --no-install-recommends $need_packages >&2
fi

# PowerShell 7, the real peer of the PSRP tests (tests/psrp_*): not in Debian, so a .NET global tool from NuGet,
# kept under ~/.dotnet/tools (43 MB download, 201 MB on disk, about 5 s).
PWSH_VERSION=7.6.9
PATH="$PATH:$HOME/.dotnet/tools"
export PATH
if ! command -v pwsh >/dev/null 2>&1; then
  if ! command -v dotnet >/dev/null 2>&1; then
    echo "remote tests: pwsh is missing, and dotnet to install it too" >&2
    echo "hint: install the .NET SDK (apt-get install dotnet-sdk-8.0) or PowerShell $PWSH_VERSION" >&2
    exit 1
  fi
  echo "remote tests: installing PowerShell $PWSH_VERSION as a .NET global tool" >&2
  dotnet tool install --global PowerShell --version "$PWSH_VERSION" >&2
fi

DENO="$(sh scripts/deno.sh)"
PATH="$(dirname "$DENO"):$PATH"
export PATH
"$DENO" --version | head -n 1

"$DENO" install --frozen
"$DENO" task check
"$DENO" task lint
"$DENO" fmt --check
shellcheck install.sh scripts/*.sh .ci/run

log="$(mktemp)"
trap 'rm -f "$log" "$log.status"' EXIT
# the pipeline's status is tee's, so deno's own is kept in a file
{ NO_COLOR=1 "$DENO" task test "$@" 2>&1 && echo 0 >"$log.status" || echo $? >"$log.status"; } | tee "$log"
status="$(cat "$log.status")"
# deno test's own summaries ("ok | 5 passed (3 steps) | 0 failed (1s)", one per run of the task); restate them
# plainly, added up. The conformance suites run on their own: their leak check watches every process of the test run,
# and in a parallel run other files' servers would count as leaks.
passed=0
failed=0
runs=0
summaries="$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$log" || true)"
while IFS= read -r summary; do
  [ -n "$summary" ] || continue
  p="$(printf '%s' "$summary" | sed -n 's/^[A-Za-z]* | \([0-9]*\) passed.*/\1/p')"
  f="$(printf '%s' "$summary" | sed -n 's/.*| \([0-9]*\) failed.*/\1/p')"
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
  runs=$((runs + 1))
done <<EOF_SUMMARIES
$summaries
EOF_SUMMARIES
if [ "$runs" -eq 0 ]; then
  echo "remote tests: deno test printed no summary" >&2
  exit 1
fi
echo "${passed} passed, ${failed} failed"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ]; then exit 1; fi
