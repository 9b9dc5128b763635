# shellcheck shell=bash disable=SC2034,SC2054,SC2016  # QEMU arguments have commas; single-quoted scripts run in a namespace
# Helpers for the QEMU drop-in tests (scripts/guest/qemu-tests, migrate,
# ovmf): a swtpm-compatible TPM backend (`vtpm socket` or Debian's `swtpm
# socket`) behind the host QEMU's `-tpmdev emulator`, guests booted with qboot
# or OVMF, QMP and serial-console plumbing. Sourced after common.sh.
#
# Environment:
#   VTPM_QEMU_BACKEND   vtpm | swtpm (default vtpm)
#   VTPM_BIN            the vtpm binary (default: built by qemu-tests)
#   VTPM_LOG_LEVEL      swtpm-style --log level for vtpm (default 4: debug;
#                       the log is kept in the run directory and shown on
#                       failures)
#   VTPM_HOST_QEMU      the QEMU binary (default qemu-system-x86_64, Debian 12: 7.2)
#   VTPM_QEMU           host (default) | trixie: QEMU 11 from the trixie chroot
#                       that scripts/guest/setup makes, run in a private mount
#                       namespace with the run directory, the kernel, the
#                       cache and OVMF bind-mounted at their own paths
#   VTPM_OVMF_CODE / VTPM_OVMF_VARS   OVMF images (default the `ovmf` package's)

QEMU="${VTPM_HOST_QEMU:-qemu-system-x86_64}"
OVMF_CODE="${VTPM_OVMF_CODE:-/usr/share/OVMF/OVMF_CODE.fd}"
OVMF_VARS="${VTPM_OVMF_VARS:-/usr/share/OVMF/OVMF_VARS.fd}"
# Processes this script started (killed by qc_cleanup, by pid).
QC_PIDS=()

qc_now() { date +%s.%N; }
qc_since() { printf '%.1f' "$(echo "$(date +%s.%N) - $1" | bc)"; }

# Kills every process we started: TERM, then KILL after 5 s.
qc_cleanup() {
    local p
    for p in "${QC_PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${QC_PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    QC_PIDS=()
}

# Stops one process we started (TERM, then KILL after 5 s); returns its status.
qc_stop() {
    local p="$1" rc=0
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || rc=$?
    return "$rc"
}

# Waits up to 5 s for socket $1 (and gives up early if process $2 exits).
qc_wait_sock() {
    local _
    for _ in $(seq 100); do
        [ -S "$1" ] && return 0
        if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then
            echo "process $2 exited without creating $1" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "no socket $1 after 5 s" >&2
    return 1
}

# Starts the TPM backend. $1: directory for its socket (ctrl.sock), log
# (backend.log) and pid; state in $1/state unless --state DIR. More options:
#   --key FILE            state-file key (32 raw bytes)
#   --migration-key FILE  key that encrypts the state blobs (32 raw bytes)
#   --migration OPTS      vtpm only: shared-storage handoff
#                         (release-lock-outgoing | incoming)
# Sets QC_BACKEND_PID and appends it to QC_PIDS.
qc_backend_start() {
    local dir="$1" state="" key="" mkey="" migration=""
    shift
    while [ $# -gt 0 ]; do
        case "$1" in
        --state) state="$2"; shift ;;
        --key) key="$2"; shift ;;
        --migration-key) mkey="$2"; shift ;;
        --migration) migration="$2"; shift ;;
        *) echo "qc_backend_start: unknown option $1" >&2; return 2 ;;
        esac
        shift
    done
    mkdir -p "$dir"
    [ -n "$state" ] || state="$dir/state"
    mkdir -p "$state"
    rm -f "$dir/ctrl.sock"
    local args=(socket --tpm2 --tpmstate "dir=$state" --ctrl "type=unixio,path=$dir/ctrl.sock")
    case "${VTPM_QEMU_BACKEND:-vtpm}" in
    vtpm)
        [ -z "$key" ] || args+=(--key "file=$key,format=binary")
        [ -z "$mkey" ] || args+=(--migration-key "file=$mkey,format=binary")
        [ -z "$migration" ] || args+=(--migration "$migration")
        args+=(--log "file=$dir/backend.log,level=${VTPM_LOG_LEVEL:-4}")
        echo "+ $VTPM_BIN ${args[*]}" >"$dir/backend.cmd"
        "$VTPM_BIN" "${args[@]}" >"$dir/backend.out" 2>&1 &
        ;;
    swtpm)
        [ -z "$key" ] || args+=(--key "file=$key,format=binary,mode=aes-256-cbc")
        [ -z "$mkey" ] || args+=(--migration-key "file=$mkey,format=binary,mode=aes-256-cbc")
        [ -z "$migration" ] || { echo "swtpm 0.7 has no --migration option" >&2; return 2; }
        args+=(--log "file=$dir/backend.log,level=20")
        echo "+ swtpm ${args[*]}" >"$dir/backend.cmd"
        swtpm "${args[@]}" >"$dir/backend.out" 2>&1 &
        ;;
    *) echo "VTPM_QEMU_BACKEND: vtpm or swtpm" >&2; return 2 ;;
    esac
    QC_BACKEND_PID=$!
    QC_PIDS+=("$QC_BACKEND_PID")
    echo "$QC_BACKEND_PID" >"$dir/backend.pid"
    qc_wait_sock "$dir/ctrl.sock" "$QC_BACKEND_PID" || {
        echo "backend did not create $dir/ctrl.sock:" >&2
        tail -n 20 "$dir/backend.log" "$dir/backend.out" 2>/dev/null >&2
        return 1
    }
}

# Puts scripts/guest/tpm-ctrl-trace in front of control socket $2; the
# trace goes to $1/tpm-trace.log; $3: delay for each TPM command in ms
# (default 0), applied only while the file $1/delay-on exists. Sets
# QC_TRACE_SOCK (for QEMU's -chardev).
qc_trace_start() {
    "$REPO_ROOT/scripts/guest/tpm-ctrl-trace" --listen "$1/trace.sock" --backend "$2" \
        --log "$1/tpm-trace.log" --delay-ms "${3:-0}" --delay-when "$1/delay-on" &
    QC_PIDS+=($!)
    qc_wait_sock "$1/trace.sock"
    QC_TRACE_SOCK="$1/trace.sock"
}

# Summary of a trace: how many of each TPM command, by response code, and
# the control commands.
qc_trace_summary() {
    [ -s "$1" ] || return 0
    echo "-- TPM commands ($1): count, command, response"
    sed -n 's/^[0-9.]* cmd  \([^ ]* ([^)]*)\) [0-9]* bytes -> \(rc [^ ]* ([^)]*)\|backend closed.*\).*/\1 -> \2/p' \
        "$1" | sort | uniq -c | sort -k2
    echo "-- control commands:"
    sed -n 's/^[0-9.]* ctrl \([A-Z_?][A-Z_]*\) (.*/\1/p' "$1" | uniq -c |
        awk '{ printf " %s%s", $2, ($1 > 1 ? "x" $1 : "") } END { print "" }'
}

# Lines of the backend log worth showing after a failure: errors, and the
# commands vtpm answered with TPM_RC_COMMAND_CODE (unimplemented).
qc_backend_diag() {
    local log="$1/backend.log"
    [ -f "$log" ] || return 0
    echo "-- backend log ($log): errors / unimplemented commands:"
    grep -iE 'error|warn|fail|panic|COMMAND_CODE|unimplemented|unsupported|not supported' "$log" |
        grep -v 'rc=0x0*0\b' | sort | uniq -c | sort -rn | head -n 25 || true
    echo "-- last lines:"
    tail -n 15 "$log"
    if [ -s "$1/backend.out" ]; then
        echo "-- backend stdout/stderr:"
        tail -n 10 "$1/backend.out"
    fi
}

# Builds the initramfs with steps file $1 into $2 (prints nothing).
qc_initrd() {
    "$REPO_ROOT/scripts/guest/build-initramfs" --kver "$KVER" --steps "$1" --out "$2" >/dev/null
}

# Prints QEMU's arguments, one per line, for a guest with a -tpmdev emulator
# TPM. Options:
#   --firmware qboot|ovmf  (ovmf: pflash OVMF_CODE + a copy of OVMF_VARS in
#                          --dir, and the bzImage: OVMF boots -kernel through
#                          its EFI stub; qboot: the PVH vmlinux, fastest)
#   --model tpm-crb|tpm-tis
#   --sock PATH            the backend's control socket
#   --initrd FILE --append ARGS --dir DIR (vars copy)
#   --console FILE         guest console to a file (-serial file:)
#   --console-sock PATH    guest console as a socket chardev (the host can type
#                          into the guest), logged to --console FILE
#   --qmp PATH             a QMP socket
#   --incoming URI         wait for an incoming migration
#   --mem MB               guest RAM (default 512)
qc_qemu_args() {
    local firmware=qboot model=tpm-crb sock="" initrd="" append="" dir="" console="" mem=512
    local console_sock="" qmp="" incoming="" kernel
    while [ $# -gt 0 ]; do
        case "$1" in
        --firmware) firmware="$2" ;;
        --model) model="$2" ;;
        --sock) sock="$2" ;;
        --initrd) initrd="$2" ;;
        --append) append="$2" ;;
        --dir) dir="$2" ;;
        --console) console="$2" ;;
        --console-sock) console_sock="$2" ;;
        --qmp) qmp="$2" ;;
        --incoming) incoming="$2" ;;
        --mem) mem="$2" ;;
        *) echo "qc_qemu_args: unknown option $1" >&2; return 2 ;;
        esac
        shift 2
    done
    local args=(-nodefaults -no-user-config -display none -net none
        -accel tcg -cpu max,vendor=GenuineIntel -smp 1 -m "$mem" -machine q35)
    case "$firmware" in
    qboot)
        kernel="$(guest_kernel "$KVER")"
        local d
        for d in /usr/share/qemu /usr/share/seabios; do
            if [ -f "$d/qboot.rom" ]; then args+=(-bios "$d/qboot.rom"); break; fi
        done
        ;;
    ovmf)
        # OVMF's -kernel loader needs the EFI-stub bzImage, not the PVH ELF.
        kernel="/boot/vmlinuz-$KVER"
        [ -f "$dir/OVMF_VARS.fd" ] || cp "$OVMF_VARS" "$dir/OVMF_VARS.fd"
        args+=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE"
            -drive "if=pflash,format=raw,unit=1,file=$dir/OVMF_VARS.fd")
        ;;
    *) echo "--firmware qboot|ovmf" >&2; return 2 ;;
    esac
    args+=(-kernel "$kernel" -initrd "$initrd" -append "$append" -no-reboot)
    if [ -n "$console_sock" ]; then
        args+=(-chardev "socket,id=ser0,path=$console_sock,server=on,wait=off,logfile=$console"
            -serial chardev:ser0)
    else
        args+=(-serial "file:$console")
    fi
    args+=(-chardev "socket,id=chrtpm,path=$sock"
        -tpmdev emulator,id=tpm0,chardev=chrtpm
        -device "$model,tpmdev=tpm0")
    [ -z "$qmp" ] || args+=(-qmp "unix:$qmp,server=on,wait=off")
    [ -z "$incoming" ] || args+=(-incoming "$incoming")
    printf '%s\n' "${args[@]}"
}

# Starts QEMU with the given arguments; $1: run directory (qemu.cmd,
# qemu.out). Sets QC_QEMU_PID. Paths in the arguments must lie under $2 (the
# run's top directory), $GUEST_CACHE, /boot or OVMF's directory, which are
# what the trixie QEMU sees.
qc_qemu_start() {
    local dir="$1" top="$2"
    shift 2
    case "${VTPM_QEMU:-host}" in
    host)
        echo "+ $QEMU $*" >"$dir/qemu.cmd"
        "$QEMU" "$@" >"$dir/qemu.out" 2>&1 &
        ;;
    trixie)
        [ -f "$TRIXIE_ROOT/.vtpm-qemu11-ready" ] || {
            echo "no QEMU 11 chroot: run scripts/guest/setup" >&2
            return 1
        }
        echo "+ (chroot $TRIXIE_ROOT) qemu-system-x86_64 $*" >"$dir/qemu.cmd"
        # unshare, bash and chroot all exec: $! is QEMU's own pid. The bind
        # mounts vanish with the namespace.
        unshare -m --propagation private -- bash -euc '
            R=$1 ovmf=$2
            shift 2
            mount --rbind /dev "$R/dev"
            mount --rbind /proc "$R/proc"
            mount --rbind /sys "$R/sys"
            while [ "$1" != -- ]; do
                mkdir -p "$R$1"
                mount --bind "$1" "$R$1"
                shift
            done
            shift
            exec chroot "$R" qemu-system-x86_64 "$@"
        ' _ "$TRIXIE_ROOT" "$(dirname "$OVMF_CODE")" \
            "$top" "$GUEST_CACHE/kernel" /boot "$(dirname "$OVMF_CODE")" -- "$@" \
            >"$dir/qemu.out" 2>&1 &
        ;;
    *) echo "VTPM_QEMU: host or trixie" >&2; return 2 ;;
    esac
    QC_QEMU_PID=$!
    QC_PIDS+=("$QC_QEMU_PID")
}

# "QEMU 7.2.22" / "QEMU 11.1.3": the version qc_qemu_start runs.
qc_qemu_version() {
    case "${VTPM_QEMU:-host}" in
    host) "$QEMU" --version | head -n1 | awk '{ print "QEMU", $4 }' ;;
    *) awk '{ print "QEMU", $4 }' "$TRIXIE_ROOT/.vtpm-qemu11-ready" ;;
    esac
}

# Waits until file $1 has a line matching the ERE $2, the guest fails
# (VTPM-GUEST-RESULT: FAIL, a kernel panic), process $4 exits, or $3 seconds
# pass. Returns 0 on a match, 1 otherwise (and says why on stderr).
qc_wait_console() {
    local log="$1" re="$2" timeout="$3" pid="${4:-}" deadline
    deadline=$(($(date +%s) + timeout))
    while :; do
        if grep -qE -- "$re" "$log" 2>/dev/null; then return 0; fi
        if grep -qE '^VTPM-GUEST-RESULT: FAIL|Kernel panic' "$log" 2>/dev/null; then
            echo "guest failed: $(grep -m1 -E '^VTPM-GUEST-RESULT: FAIL|Kernel panic' "$log" | tr -d '\r')" >&2
            return 1
        fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            # one last look: the line may have landed as QEMU exited
            grep -qE -- "$re" "$log" 2>/dev/null && return 0
            echo "QEMU exited before '$re'" >&2
            return 1
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "timeout after ${timeout}s waiting for '$re'" >&2
            return 1
        fi
        sleep 0.1
    done
}

# QMP: connects to socket $1, negotiates, sends each remaining argument (a
# JSON command) and prints each "return" as JSON on one line. Exits non-zero
# on an "error" answer.
qc_qmp() {
    python3 - "$@" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect(sys.argv[1])
f = s.makefile("rw")
json.loads(f.readline())  # greeting

def call(cmd):
    f.write(cmd + "\n")
    f.flush()
    while True:
        line = f.readline()
        if not line:
            sys.exit("QMP: connection closed")
        msg = json.loads(line)
        if "return" in msg:
            return msg["return"]
        if "error" in msg:
            print(json.dumps(msg["error"]), file=sys.stderr)
            sys.exit(1)
        # asynchronous events are skipped

call('{"execute": "qmp_capabilities"}')
for cmd in sys.argv[2:]:
    print(json.dumps(call(cmd)))
EOF
}

# Types text $2 (plus a newline) into the guest console socket $1.
qc_console_type() {
    python3 - "$1" "$2" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall((sys.argv[2] + "\n").encode())
time.sleep(0.5)  # let QEMU hand it to the UART before the client goes away
s.close()
EOF
}

# Shows the tail of a guest console log, without blank lines and CRs.
qc_show_console() {
    echo "-- guest console ($1):"
    # (OVMF clears the screen with ANSI sequences: drop them)
    tr -d '\r' <"$1" | sed 's/\x1b\[[0-9;=?]*[a-zA-Z]//g' | grep -vE '^\s*$' | tail -n "${2:-40}" || true
}
