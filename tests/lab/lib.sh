# shellcheck shell=bash
# Constants here are used by the scripts that source this file.
# shellcheck disable=SC2034
# Shared helpers of tests/lab/{up,down,smoke}. Sourced, not run.
#
# The lab's bookkeeping lives in DIR/lab.state, an append-only journal written *before* each
# object is created, one record per line:
#   prefix  NAME                 the per-run prefix every lab object carries (drlab-xxxxxx)
#   netns   NAME                 a network namespace
#   etcdir  PATH                 an /etc/netns/NAME directory
#   shared  PATH                 a machine-wide directory the lab had to create (/etc/go, /etc/go-plugins, /etc/netns);
#                                also marked in /etc/netns/.drlab-created-* (see down, step 5)
#   reaper  HOST PID STARTTIME   a host's subreaper (runs its sshd)
#   flavour default|hardened     what `up --flavour` built
#   sshuser NAME UID             hardened: the login user (lives only in the etcdirs' passwd)
#   state   building|up|down
# `down` undoes exactly these records, so it also cleans up after an `up` that failed halfway.

LAB_SUBNET=10.231.0
LAB_HOSTS=(ctl pg1 pg2 go1 go2)
LAB_SSH_HOSTS=(pg1 pg2 go1 go2)
declare -A LAB_ADDR=([ctl]=$LAB_SUBNET.11 [pg1]=$LAB_SUBNET.12 [pg2]=$LAB_SUBNET.13 [go1]=$LAB_SUBNET.14 [go2]=$LAB_SUBNET.15)
LAB_VIP_ADDR=$LAB_SUBNET.100
PG_BIN=/usr/lib/postgresql/15/bin
PG_PORT=5432
GO_PORT=8153
# The hardened flavour's ports (sshd and PostgreSQL off their defaults).
HARDENED_SSH_PORT=2222
HARDENED_PG_PORT=6543
SHARED_MARK_DIR=/etc/netns

die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }

# Milliseconds since the script started.
lab_t0_ns=${lab_t0_ns:-$(date +%s%N)}
elapsed() { local now; now=$(date +%s%N); echo $(( (now - ${lab_t0_ns:-$now}) / 1000000 )); }
say() { local ms; ms=$(elapsed); printf '[lab %3d.%01ds] %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$*" >&2 || true; }

need_root() { [[ $(id -u) == 0 ]] || die "the lab needs root (network namespaces, bind mounts, runuser)"; }

# parse_dir_arg "$@": sets DIR (absolute) from --dir DIR; leaves other args in REST.
parse_dir_arg() {
    DIR='' REST=()
    while (($#)); do
        case $1 in
            --dir) [[ $# -ge 2 ]] || die "--dir needs a value"; DIR=$2; shift 2 ;;
            --dir=*) DIR=${1#--dir=}; shift ;;
            *) REST+=("$1"); shift ;;
        esac
    done
    [[ -n $DIR ]] || die "usage: $(basename "$0") --dir DIR"
    DIR=$(realpath -m -- "$DIR")
    [[ $DIR != *[[:space:]\'\"\\\$\`]* ]] || die "DIR must not contain blanks, quotes, \\, \$ or \`: $DIR"
}

# Journal helpers.
state_file() { echo "$DIR/lab.state"; }
record() { echo "$*" >>"$(state_file)"; }
records() { [[ -f $(state_file) ]] && awk -v k="$1" '$1 == k { $1 = ""; sub(/^ /, ""); print }' "$(state_file)"; }
lab_prefix() { records prefix | tail -n1; }
lab_state() { records state | tail -n1; }

ns_exists() { [[ -e /run/netns/$1 ]]; }

# The start time (clock ticks since boot) of PID, from /proc/PID/stat field 22; empty if gone.
proc_starttime() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    stat=${stat##*) }
    awk '{print $20}' <<<"$stat"
}
# State letter of PID (R, S, Z, ...); empty if gone.
proc_state() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    stat=${stat##*) }
    echo "${stat%% *}"
}
# True while PID exists and is not a zombie.
proc_alive() { local s; s=$(proc_state "$1"); [[ -n $s && $s != Z && $s != X ]]; }

# wait_until SECONDS DESCRIPTION CMD...: polls CMD every 0.1 s until it succeeds.
wait_until() {
    local secs=$1 what=$2; shift 2
    local deadline=$(( $(date +%s%N) + secs * 1000000000 ))
    until "$@" >/dev/null 2>&1; do
        if (( $(date +%s%N) > deadline )); then
            echo "lab: timed out after ${secs}s waiting for: $what" >&2
            return 1
        fi
        sleep 0.1
    done
}

# Loads DIR/lab.env (written by up).
load_env() {
    [[ -f $DIR/lab.env ]] || die "$DIR/lab.env not found: is there a lab in $DIR?"
    # shellcheck disable=SC1091
    . "$DIR/lab.env"
}

# lab_ssh HOST CMD...: runs CMD on a lab host, from the controller namespace, with the lab key and
# strict host-key checking, as the lab's login user (root in the default flavour, the unprivileged
# LAB_SSH_USER in the hardened one) on LAB_SSH_PORT. CMD words are quoted for the remote shell
# exactly once.
lab_ssh() {
    local host=$1; shift
    local addr=${LAB_ADDR[$host]}
    ip netns exec "$LAB_NS_CTL" ssh -n -F /dev/null -i "$LAB_SSH_KEY" \
        -o UserKnownHostsFile="$LAB_KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null \
        -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR \
        -p "${LAB_SSH_PORT:-22}" "${LAB_SSH_USER:-root}@$addr" "$(printf '%q ' "$@")"
}

hardened() { [[ ${LAB_FLAVOUR:-default} == hardened ]]; }

# pg_log_file HOST: the server log of pg1/pg2. In the hardened flavour DIR/<h> is root's, so the
# log lives in a postgres-owned DIR/<h>/log.
pg_log_file() { if hardened; then echo "$DIR/$1/log/postgresql.log"; else echo "$DIR/$1/postgresql.log"; fi; }

# lab_root HOST CMD...: CMD as root on a lab host (the hardened login user escalates with sudo -n).
lab_root() {
    local host=$1; shift
    if hardened; then lab_ssh "$host" sudo -n -- "$@"; else lab_ssh "$host" "$@"; fi
}

# lab_postgres HOST CMD...: CMD as the cluster owner, postgres, on a lab host, started in /.
lab_postgres() {
    local host=$1; shift
    if hardened; then
        lab_ssh "$host" sudo -n -u postgres -- env -C / "$@"
    else
        lab_ssh "$host" env -C / runuser -u postgres -- "$@"
    fi
}

# ctl_psql ADDR SQL [DB]: psql from the controller namespace, as PostgreSQL user postgres (in the
# hardened flavour with its scram password, from the controller's LAB_PG_PASSFILE).
ctl_psql() {
    ip netns exec "$LAB_NS_CTL" env ${LAB_PG_PASSFILE:+PGPASSFILE="$LAB_PG_PASSFILE"} \
        "$LAB_PG_BIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -w \
        -h "$1" -p "$LAB_PG_PORT" -U postgres -d "${3:-gocd}" -c "$2"
}

# ctl_get URL: HTTP GET from the controller namespace with the stand-in's probe (no curl needed).
ctl_get() { ip netns exec "$LAB_NS_CTL" "$LAB_STANDIN" probe --timeout 3 "$1"; }
