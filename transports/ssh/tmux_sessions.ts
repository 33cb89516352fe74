/**
 * Persistent sessions over SSH, hosted by tmux on the host: PowerShell's disconnected sessions
 * (New-/Get-/Connect-/Disconnect-/Receive-/Remove-PSSession) for the transport most people have.
 *
 * The session lives on the host, in a tmux server on its own socket (`tmux -L remote`, started with
 * `-f /dev/null`), so the user's own tmux sessions and tmux.conf are never touched. Everything the
 * host knows about a session is kept in tmux user options (`@remote_instance_id`, `@remote_detached_at`,
 * `@remote_idle_timeout`, `@remote_buffering`…), so a client on another machine discovers it all from
 * the host. A small POSIX sh helper, sent on every call and kept at
 * `~/.local/state/remote-sessions/<socket>/host.sh` for tmux's hooks, does the host-side work: the
 * output log `receive` reads, the idle-timeout watcher, and the block/drop buffering. docs/persistent-sessions.md
 * describes the design.
 *
 * @example Creating and listing sessions
 * ```ts ignore
 * import { tmuxSessionHost } from "./tmux_sessions.ts";
 * const host = tmuxSessionHost();
 * await host.create(ctx, "ITTask", { instanceId: crypto.randomUUID(), pty: { term: "xterm", columns: 80, rows: 24 } });
 * console.log(await host.list(ctx));
 * ```
 *
 * @module
 */
import {
  type Channel,
  type DisconnectOptions,
  type ExitStatus,
  type HostSession,
  type OpenContext,
  RemoteError,
  type SessionHost,
  shellQuote,
  UsageError,
} from "../../plugins/mod.ts";
import { connectSsh, type SshConnection } from "./connection.ts";

/** The environment variable naming the tmux socket (`tmux -L <name>`); `remote` when unset. */
export const TMUX_SOCKET_ENV = "REMOTE_TMUX_SOCKET";
/** The environment variable setting the per-session output buffer on the host, in bytes (default 4 MiB). */
export const BUFFER_LIMIT_ENV = "REMOTE_TMUX_BUFFER_BYTES";
/** The tmux socket name used when {@linkcode TMUX_SOCKET_ENV} is unset. */
export const DEFAULT_TMUX_SOCKET = "remote";
/** Unread output a session keeps on the host while disconnected, unless {@linkcode BUFFER_LIMIT_ENV} says otherwise. */
export const DEFAULT_BUFFER_LIMIT = 4 * 1024 * 1024;

/** Session and socket names: tmux mangles `.` and `:`, and the names travel through tmux formats and sh. */
const SAFE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Options of {@linkcode tmuxSessionHost}. */
export interface TmuxSessionHostOptions {
  /** the tmux socket name; default: `$REMOTE_TMUX_SOCKET`, else `remote`, read at each call */
  socket?: string;
  /** unread output kept per session on the host, in bytes; default: `$REMOTE_TMUX_BUFFER_BYTES`, else 4 MiB */
  bufferLimit?: number;
  /** opens the SSH connection; default {@linkcode connectSsh} */
  connect?: (ctx: OpenContext) => Promise<SshConnection>;
}

/** A word of a command line the helper runs: always single-quoted, so every line has one shape. */
const quote = (word: string) => shellQuote(word, { always: true });

/**
 * The host-side helper (POSIX sh). Called as `host.sh COMMAND SOCKET NAME [ARGS]`; writes markers
 * `remote-host: <what>` on stderr for the errors the client turns into messages.
 */
export const HOST_HELPER = String.raw`# remote's persistent-session helper; rewritten by every remote call (do not edit)
set -u
cmd=$1 sock=$2 name=$3
shift 3
dir="$HOME/.local/state/remote-sessions/$sock"
log="$dir/$name.log"
status="$dir/$name.status"
# exact name, current window: session and pane commands alike accept it
tg="=$name:"
hs="\"\$HOME/.local/state/remote-sessions/$sock/host.sh\""
t() { tmux -L "$sock" "$@"; }
opt() { t show-options -qv -t "$tg" "$1" 2>/dev/null; }
setopt() { t set-option -q -t "$tg" "$1" "$2"; }
die() { echo "remote-host: $1" >&2; exit 3; }
need_session() { t has-session -t "$tg" 2>/dev/null || die no-session; }
lock() {
  n=0
  while ! mkdir "$log.lock" 2>/dev/null; do
    n=$((n + 1))
    # the state directory is gone (the session was removed meanwhile): nothing left to guard
    [ -d "$dir" ] || exit 0
    # a holder killed mid-trim leaves its lock behind: after ~5 s it is stale
    [ "$n" -gt 100 ] && rmdir "$log.lock" 2>/dev/null
    sleep 0.05 2>/dev/null || sleep 1
  done
}
unlock() { rmdir "$log.lock" 2>/dev/null; }
pane_sids() { t list-panes -s -t "$tg" -F '#{pane_pid}' 2>/dev/null; }
# only our own watcher, verified by its command line: a stale pid may belong to anyone by now
kill_watcher() {
  w=$(opt @remote_watcher)
  [ -n "$w" ] || return 0
  case "$(ps -o args= -p "$w" 2>/dev/null)" in
    *"host.sh watch $sock $name") kill "$w" 2>/dev/null ;;
  esac
  return 0
}
start_watcher() {
  [ -n "$(opt @remote_idle_timeout)" ] || return 0
  t run-shell -b "sh $hs watch $sock $name"
}
# the start of "output since the last detach"; a second mark for the same detach changes nothing
mark() {
  [ "$(opt @remote_marked)" = 1 ] && return 0
  lock
  size=$(wc -c < "$log" 2>/dev/null || echo 0)
  setopt @remote_mark $((size))
  setopt @remote_dropped 0
  setopt @remote_marked 1
  unlock
  setopt @remote_detached_at "$(date +%s)"
  start_watcher
}

case $cmd in
create)
  cols=$1 rows=$2 id=$3 limit=$4
  if t has-session -t "$tg" 2>/dev/null; then die exists; fi
  : > "$log"
  rm -f "$status"
  # the pane runs sh, which runs the user's login shell and, when a client is attached as it exits,
  # leaves its exit status for that client (see attach); with a command (invoke --in-disconnected-session)
  # the shell first runs it as sshd runs an exec command, after waiting for pipe-pane so the log misses nothing
  # shellcheck disable=SC2016 # expanded by the session's sh, from its arguments
  pane='s=$SHELL; [ -n "$s" ] || s=/bin/sh
    if [ "$#" -ge 4 ]; then tmux -L "$1" wait-for "remote-go-$2"; "$s" -c "$4"; fi
    "$s" -l; st=$?
    [ "$(tmux -L "$1" display-message -p -t "$TMUX_PANE" "#{session_attached}" 2>/dev/null)" = 0 ] || echo "$st" > "$3"
    exit "$st"'
  new_pane() { t -f /dev/null new-session -d -s "$name" -x "$cols" -y "$rows" sh -c "$pane" remote "$sock" "$id" "$status" "$@"; }
  if [ "$#" -ge 5 ]; then new_pane "$5"; else new_pane; fi || { rm -f "$log"; die create-failed; }
  # tmux must be invisible: no status line, no prefix key; ~& of remote is the way out
  t set-option -g status off 2>/dev/null
  t set-option -g prefix None 2>/dev/null
  t set-option -g prefix2 None 2>/dev/null
  t set-option -g escape-time 0 2>/dev/null
  if setopt @remote_instance_id "$id" && setopt @remote_buffer_limit "$limit" &&
    setopt @remote_buffering drop && setopt @remote_mark 0 && setopt @remote_marked 1 &&
    t set-hook -t "$tg" client-detached "run-shell -b 'sh $hs mark $sock $name'" &&
    t pipe-pane -t "$tg" "exec sh $hs log $sock $name"; then
    # started with a command, the session is Disconnected from the start, as Invoke-Command leaves it
    if [ "$#" -ge 5 ]; then setopt @remote_detached_at "$(date +%s)" && t wait-for -S "remote-go-$id"; fi && exit 0
  fi
  t kill-session -t "$tg" 2>/dev/null
  rm -f "$log" "$status"
  die create-failed
  ;;
list)
  # the name last: a session made by hand may have a | in its name
  out=$(t list-sessions -F '#{session_attached}|#{session_created}|#{@remote_instance_id}|#{@remote_detached_at}|#{session_name}' 2>&1) || {
    case $out in
      *"no server running"* | *"error connecting to"*) exit 0 ;;
    esac
    echo "$out" >&2
    exit 1
  }
  printf '%s\n' "$out"
  ;;
prepare-attach)
  need_session
  setopt @remote_marked 0
  ;;
detach)
  need_session
  t detach-client -s "$tg" 2>/dev/null
  mark
  ;;
disconnect)
  timeout=$1 mode=$2
  need_session
  [ -z "$timeout" ] || { [ "$timeout" = 0 ] && t set-option -qu -t "$tg" @remote_idle_timeout; } ||
    setopt @remote_idle_timeout "$timeout"
  [ -z "$mode" ] || setopt @remote_buffering "$mode"
  t detach-client -s "$tg" 2>/dev/null
  mark
  # an explicit disconnect restarts the idle clock even when nobody was attached
  setopt @remote_detached_at "$(date +%s)"
  start_watcher
  ;;
receive)
  need_session
  lock
  m=$(opt @remote_mark)
  size=$(wc -c < "$log" 2>/dev/null || echo 0)
  size=$((size))
  [ -n "$m" ] || m=0
  [ "$m" -le "$size" ] || m=$size
  [ "$size" -gt "$m" ] && tail -c +$((m + 1)) "$log" | head -c $((size - m))
  echo "dropped $(opt @remote_dropped)" >&2
  setopt @remote_mark "$size"
  setopt @remote_dropped 0
  unlock
  ;;
remove)
  need_session
  sids=$(pane_sids)
  kill_watcher
  t kill-session -t "$tg"
  for p in $sids; do pkill -TERM -s "$p" 2>/dev/null; done
  n=0
  for p in $sids; do
    while pgrep -s "$p" > /dev/null 2>&1 && [ "$n" -lt 20 ]; do
      n=$((n + 1))
      sleep 0.1 2>/dev/null || sleep 1
    done
    pkill -KILL -s "$p" 2>/dev/null
  done
  rm -f "$log" "$log.tmp" "$status"
  rmdir "$log.lock" 2>/dev/null
  exit 0
  ;;
mark)
  t has-session -t "$tg" 2>/dev/null || exit 0
  [ "$(t display-message -p -t "$tg" '#{session_attached}')" = 0 ] || exit 0
  mark
  ;;
watch)
  gen=$(opt @remote_detached_at)
  kill_watcher
  setopt @remote_watcher $$
  sp=
  trap '[ -n "$sp" ] && kill "$sp" 2>/dev/null; exit 0' TERM HUP INT
  trap '[ "$(opt @remote_watcher)" = $$ ] && t set-option -qu -t "$tg" @remote_watcher' EXIT
  while :; do
    info=$(t display-message -p -t "$tg" '#{session_attached} #{@remote_watcher} #{@remote_detached_at} #{@remote_idle_timeout}' 2>/dev/null) || exit 0
    # shellcheck disable=SC2086 # splitting the fields is the point
    set -- $info
    [ "$1" = 0 ] && [ "$2" = $$ ] && [ "$3" = "$gen" ] && [ "$#" -ge 4 ] || exit 0
    left=$(($3 + $4 - $(date +%s)))
    if [ "$left" -le 0 ]; then
      trap - EXIT
      exec sh "$0" remove "$sock" "$name" > /dev/null 2>&1
    fi
    [ "$left" -gt 60 ] && left=60
    sleep "$left" &
    sp=$!
    wait "$sp"
    sp=
  done
  ;;
log)
  # the pipe-pane writer: appends pane output to the log, keeping it bounded
  limit=$(opt @remote_buffer_limit)
  [ -n "$limit" ] || limit=4194304
  keep=$((limit / 2))
  while :; do
    n=$(dd bs=65536 count=1 2> /dev/null | tee -a "$log" | wc -c)
    if [ "$((n))" = 0 ]; then
      # the pane is gone: when its session ended too, its transcript goes with it
      t has-session -t "$tg" 2>/dev/null || { rm -f "$log" "$log.tmp"; rmdir "$log.lock" 2>/dev/null; }
      exit 0
    fi
    size=$(wc -c < "$log")
    [ "$((size))" -gt "$limit" ] || continue
    attached=$(t display-message -p -t "$tg" '#{session_attached}' 2>/dev/null) || exit 0
    mode=$(opt @remote_buffering)
    lock
    size=$(wc -c < "$log")
    size=$((size))
    m=$(opt @remote_mark)
    [ -n "$m" ] || m=0
    cut=$((size - keep))
    # block never drops unread output (see docs/persistent-sessions.md): only what was read may go
    if [ "$attached" = 0 ] && [ "$mode" = block ] && [ "$cut" -gt "$m" ]; then cut=$m; fi
    if [ "$cut" -gt 0 ]; then
      tail -c "$((size - cut))" "$log" > "$log.tmp" && mv "$log.tmp" "$log"
      if [ "$cut" -gt "$m" ]; then
        d=$(opt @remote_dropped)
        [ -n "$d" ] || d=0
        [ "$attached" = 0 ] && setopt @remote_dropped $((d + cut - m))
        m=0
      else
        m=$((m - cut))
      fi
      setopt @remote_mark "$m"
    fi
    unlock
  done
  ;;
*)
  die "unknown-command $cmd"
  ;;
esac
`;

/**
 * The attach command (`sh -c ATTACH remote SOCKET NAME [force]`): the tmux client exits 0 whether it
 * was detached or its session ended, so when the session is gone the status its shell left (see
 * `create`) becomes the channel's exit status, as with `ssh host`.
 */
const ATTACH = String
  .raw`if [ "$3" = force ]; then tmux -L "$1" attach-session -d -t "=$2"; else tmux -L "$1" attach-session -t "=$2"; fi
st=$?
f="$HOME/.local/state/remote-sessions/$1/$2.status"
if [ -f "$f" ] && ! tmux -L "$1" has-session -t "=$2" 2>/dev/null; then
  read -r st < "$f" || st=0
  rm -f "$f"
fi
exit "$st"`;

/** The script sent on stdin: installs the helper file for tmux's hooks, then runs the command. */
function program(): Uint8Array {
  const text = [
    "umask 077",
    'd="$HOME/.local/state/remote-sessions/$2"',
    'command -v tmux >/dev/null 2>&1 || { echo "remote-host: no-tmux" >&2; exit 3; }',
    'mkdir -p "$d" && chmod 700 "$d" || { echo "remote-host: no-state-dir" >&2; exit 3; }',
    `cat > "$d/host.sh.$$" <<'REMOTE_HELPER_END'`,
    HOST_HELPER.trimEnd(),
    "REMOTE_HELPER_END",
    'mv -f "$d/host.sh.$$" "$d/host.sh" || exit 3',
    // stdin is this script: the helper must not read the rest of it
    'sh "$d/host.sh" "$@" </dev/null',
    "",
  ].join("\n");
  return new TextEncoder().encode(text);
}

const INSTANCE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Parses the helper's `list` output into host sessions: `|`-separated, the name last (tmux escapes
 * newlines and tabs in names, but a name made by hand may hold a `|`). A session without remote's
 * instance id, or with a name remote would not give, was made by someone else: it is marked foreign.
 */
export function parseSessionList(text: string): HostSession[] {
  const sessions: HostSession[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const fields = line.split("|");
    if (fields.length < 5) continue;
    const [attached, created, instanceId, detachedAt] = fields;
    const name = fields.slice(4).join("|");
    const busy = Number(attached) > 0;
    const session: HostSession = {
      name,
      // attached somewhere: open and busy; never detached yet: open and free; else disconnected
      state: busy || !detachedAt ? "Opened" : "Disconnected",
      availability: busy ? "Busy" : detachedAt ? "None" : "Available",
    };
    if (INSTANCE_ID.test(instanceId) && SAFE_NAME.test(name)) session.instanceId = instanceId;
    else session.foreign = true;
    const createdAt = unixTime(created);
    if (createdAt) session.createdAt = createdAt;
    const seen = unixTime(detachedAt);
    if (seen) session.lastSeenAt = seen;
    sessions.push(session);
  }
  return sessions;
}

function unixTime(text: string | undefined): string | undefined {
  const n = Number(text);
  return text && Number.isFinite(n) && n > 0 ? new Date(n * 1000).toISOString() : undefined;
}

function checkName(name: string, what: string): void {
  if (!SAFE_NAME.test(name)) {
    throw new UsageError(`${what} '${name}' cannot be used on a tmux session host`, {
      hint: "use 1 to 64 letters, digits, '_' or '-'",
    });
  }
}

function socketName(options: TmuxSessionHostOptions): string {
  const socket = options.socket ?? Deno.env.get(TMUX_SOCKET_ENV) ?? DEFAULT_TMUX_SOCKET;
  checkName(socket, `tmux socket name (${TMUX_SOCKET_ENV})`);
  return socket;
}

function bufferLimit(): number {
  const text = Deno.env.get(BUFFER_LIMIT_ENV);
  if (text === undefined || text === "") return DEFAULT_BUFFER_LIMIT;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1024) {
    throw new UsageError(`${BUFFER_LIMIT_ENV}=${text} is not a number of bytes of at least 1024`, {
      hint: `unset it for the default of ${DEFAULT_BUFFER_LIMIT}`,
    });
  }
  return n;
}

const decoder = new TextDecoder();

/**
 * The tmux-hosted {@linkcode SessionHost} of the ssh transport.
 *
 * @example
 * ```ts ignore
 * import { tmuxSessionHost } from "./tmux_sessions.ts";
 * const sessions = tmuxSessionHost({ socket: "remote" });
 * ```
 */
export function tmuxSessionHost(options: TmuxSessionHostOptions = {}): SessionHost {
  const connect = options.connect ?? connectSsh;

  /** Runs one helper command on an open connection; helper markers become user errors. */
  async function helper(
    conn: SshConnection,
    ctx: OpenContext,
    command: string,
    name: string,
    args: string[] = [],
  ): Promise<{ stdout: Uint8Array; stderr: string }> {
    const socket = socketName(options);
    const line = ["sh", "-s", "--", command, socket, name, ...args].map(quote).join(" ");
    const result = await conn.run(line, { stdin: program() });
    const stderr = decoder.decode(result.stderr);
    if (result.code !== 0) throw helperError(stderr, ctx.target.display, name, command);
    return { stdout: result.stdout, stderr };
  }

  async function withConnection<T>(ctx: OpenContext, fn: (conn: SshConnection) => Promise<T>): Promise<T> {
    const conn = await connect(ctx);
    try {
      return await fn(conn);
    } finally {
      await conn[Symbol.asyncDispose]();
    }
  }

  return {
    async list(ctx) {
      return await withConnection(ctx, async (conn) => {
        const { stdout } = await helper(conn, ctx, "list", "-");
        return parseSessionList(decoder.decode(stdout));
      });
    },

    async create(ctx, name, { instanceId, pty, command }) {
      checkName(name, "session name");
      const limit = options.bufferLimit ?? bufferLimit();
      const args = [String(pty.columns), String(pty.rows), instanceId, String(limit)];
      if (command !== undefined) args.push(command);
      return await withConnection(ctx, async (conn) => {
        await helper(conn, ctx, "create", name, args);
        return {
          name,
          // a session started with a command has no client and never had one: Disconnected at once
          state: command === undefined ? "Opened" : "Disconnected",
          availability: command === undefined ? "Available" : "None",
          instanceId,
          createdAt: new Date().toISOString(),
        };
      });
    },

    async attach(ctx, name, { force, pty }) {
      checkName(name, "session name");
      const conn = await connect(ctx);
      try {
        await helper(conn, ctx, "prepare-attach", name);
        const socket = socketName(options);
        const command = ["sh", "-c", ATTACH, "remote", socket, name, force ? "force" : ""].map(quote).join(" ");
        const channel = await conn.exec(`exec ${command}`, { pty });
        return attachedChannel(channel, conn, socket, name, () => helper(conn, ctx, "detach", name));
      } catch (err) {
        await conn[Symbol.asyncDispose]();
        throw err;
      }
    },

    async disconnect(ctx, name, opts: DisconnectOptions) {
      checkName(name, "session name");
      const timeout = opts.idleTimeoutMs === undefined ? "" : String(Math.ceil(opts.idleTimeoutMs / 1000));
      return await withConnection(ctx, async (conn) => {
        await helper(conn, ctx, "disconnect", name, [timeout, opts.outputBufferingMode ?? ""]);
      });
    },

    async receive(ctx, name) {
      checkName(name, "session name");
      return await withConnection(ctx, async (conn) => {
        const { stdout, stderr } = await helper(conn, ctx, "receive", name);
        const dropped = Number(/^dropped (\d+)$/m.exec(stderr)?.[1] ?? 0);
        if (dropped > 0) {
          ctx.notice(
            `remote: ${dropped} bytes of older output were dropped while ${name} was disconnected (output buffering mode drop)`,
          );
        }
        return stdout;
      });
    },

    async remove(ctx, name) {
      if (!SAFE_NAME.test(name)) {
        // an entry an older remote recorded for a session made by hand: it is not remote's to end
        throw new RemoteError(
          "notFound",
          `session ${JSON.stringify(name)} on ${ctx.target.display} was not created by remote`,
          {
            hint: "it is left running there; end it with the host's own tools",
          },
        );
      }
      return await withConnection(ctx, async (conn) => {
        await helper(conn, ctx, "remove", name);
      });
    },
  };
}

/**
 * Wraps the PTY channel of `tmux attach-session`: the tmux client exits 0 both when detached and when
 * the session ends, so whether the session still exists decides between `detached` and `exited`.
 */
function attachedChannel(
  channel: Channel,
  conn: SshConnection,
  socket: string,
  name: string,
  detach: () => Promise<unknown>,
): Channel {
  const exit = channel.exit.then(async (status): Promise<ExitStatus> => {
    if (status.kind !== "exited") return status;
    try {
      const probe = await conn.run(`tmux -L ${quote(socket)} has-session -t ${quote(`=${name}`)}`);
      return probe.code === 0 ? { kind: "detached" } : status;
    } catch (error) {
      return { kind: "lost", error: error instanceof Error ? error : new Error(String(error)) };
    }
  });
  let disposed = false;
  return {
    ...channel,
    exit,
    async detach() {
      await detach();
    },
    async [Symbol.asyncDispose]() {
      if (disposed) return;
      disposed = true;
      await channel[Symbol.asyncDispose]();
      await conn[Symbol.asyncDispose]();
    },
  };
}

function helperError(stderr: string, host: string, name: string, command: string): RemoteError {
  const marker = /remote-host: (\S+)/.exec(stderr)?.[1];
  switch (marker) {
    case "no-tmux":
      return new RemoteError("hostMissing", `tmux is not installed on ${host}`, {
        hint: "install it there: sudo apt-get install tmux (Debian/Ubuntu), sudo dnf install tmux (Fedora/RHEL)",
      });
    case "no-session":
      return new RemoteError("notFound", `no session ${name} on ${host}`, {
        hint: `list the sessions there with: remote get --computer-name ${host}`,
      });
    case "exists":
      return new UsageError(`${host} already has a session named ${name}`, {
        hint: `pick another --name, or attach to it with: remote connect --computer-name ${host} --name ${name}`,
      });
    case "no-state-dir":
      return new RemoteError("remoteFault", `cannot create ~/.local/state/remote-sessions on ${host}`, {
        hint: "check the permissions of your home directory there",
      });
  }
  const detail = stderr.replace(/\s+/g, " ").trim() || "no message";
  return new RemoteError("remoteFault", `tmux on ${host} failed to ${command} ${name}: ${detail}`, {
    hint: "check that tmux works there: tmux -V",
  });
}
