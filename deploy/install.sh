#!/usr/bin/env bash
# Install Strait as a systemd service on a Debian/Ubuntu host.
#
# Run as root from a checkout of this repository:
#
#   deploy/install.sh                 build, install, enable and start
#   deploy/install.sh --no-build      install target/release/strait as built
#   deploy/install.sh --no-start      install only; no systemctl
#   deploy/install.sh --prefix DIR    install under DIR instead of / (for
#                                     testing; implies no systemctl)
#
# STRAIT_BIN=PATH installs that binary instead of target/release/strait
# (and skips the build).
#
# What it does, each step safe to repeat:
#   1. cargo build --release --locked -p strait
#   2. the binary  -> /usr/local/bin/strait
#   3. the unit    -> /etc/systemd/system/strait.service
#   4. /etc/strait/linkerd.yaml from the repository's linkerd.yaml, only if
#      there is none yet (an edited config is never overwritten)
#   5. strait check on the installed config
#   6. systemctl daemon-reload && systemctl enable --now strait (a running
#      Strait is restarted so the new binary takes over)
set -euo pipefail

usage() {
    sed -n '2,13s/^# \{0,1\}//p' "$0"
}

say() { printf 'install.sh: %s\n' "$*"; }
die() {
    printf 'install.sh: error: %s\n' "$*" >&2
    exit 1
}

build=1
start=1
prefix=""
while [ $# -gt 0 ]; do
    case "$1" in
    --no-build) build=0 ;;
    --no-start) start=0 ;;
    --prefix)
        [ $# -ge 2 ] || die "--prefix needs a directory"
        prefix="$2"
        shift
        ;;
    --prefix=*) prefix="${1#--prefix=}" ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
    shift
done

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
unit_src="$repo/systemd/strait.service"
config_src="$repo/linkerd.yaml"
[ -f "$unit_src" ] || die "$unit_src is missing: run this from a Strait checkout"
[ -f "$config_src" ] || die "$config_src is missing: run this from a Strait checkout"

if [ -n "$prefix" ]; then
    mkdir -p "$prefix"
    prefix="$(cd "$prefix" && pwd)"
    # A test install: nothing outside DIR is touched.
    start=0
elif [ "$(id -u)" -ne 0 ]; then
    die "run as root (or use --prefix DIR to install elsewhere)"
fi

bin_dst="$prefix/usr/local/bin/strait"
unit_dst="$prefix/etc/systemd/system/strait.service"
config_dir="$prefix/etc/strait"
config_dst="$config_dir/linkerd.yaml"

# 1. The binary.
if [ -n "${STRAIT_BIN:-}" ]; then
    bin_src="$STRAIT_BIN"
    say "using STRAIT_BIN=$bin_src (no build)"
else
    bin_src="$repo/target/release/strait"
    if [ "$build" -eq 1 ]; then
        command -v cargo >/dev/null ||
            die "cargo not found: install Rust (https://rustup.rs) or use --no-build with a built binary"
        say "building: cargo build --release --locked -p strait"
        (cd "$repo" && cargo build --release --locked -p strait)
    fi
fi
[ -x "$bin_src" ] || die "no executable at $bin_src (build it, drop --no-build, or set STRAIT_BIN)"

# 2, 3. The binary and the unit (install replaces them atomically enough:
# it unlinks and writes a new file, so a running strait keeps its inode).
say "installing $bin_dst"
install -D -m 0755 "$bin_src" "$bin_dst"
say "installing $unit_dst"
install -D -m 0644 "$unit_src" "$unit_dst"

# 4. The config, never overwritten.
install -d -m 0755 "$config_dir"
if [ -e "$config_dst" ]; then
    say "keeping the existing $config_dst"
else
    say "installing the default config as $config_dst"
    install -m 0644 "$config_src" "$config_dst"
fi

# 5. The installed config must pass check, or the unit would refuse to start.
say "checking $config_dst"
if ! "$bin_dst" check --config "$config_dst"; then
    die "$config_dst does not pass 'strait check' (problems above): fix it, then run this again"
fi

# 6. systemd.
if [ "$start" -eq 0 ]; then
    say "done; not starting anything (--no-start or --prefix)"
    if [ -z "$prefix" ]; then
        say "start it with: systemctl daemon-reload && systemctl enable --now strait"
    fi
    exit 0
fi
command -v systemctl >/dev/null || die "systemctl not found: this host does not run systemd (use --no-start)"
say "systemctl daemon-reload"
systemctl daemon-reload
if systemctl is-active --quiet strait; then
    # A running daemon keeps the old binary's code: restart to take the new
    # one (a config-only change needs just `systemctl reload strait`).
    say "systemctl enable strait && systemctl restart strait"
    systemctl enable strait
    systemctl restart strait
else
    say "systemctl enable --now strait"
    systemctl enable --now strait
fi
say "done: $(systemctl is-active strait) (see: systemctl status strait; journalctl -u strait)"
say "edit $config_dst, then: systemctl reload strait"
