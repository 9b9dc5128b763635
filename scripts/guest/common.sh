# shellcheck shell=bash disable=SC2034
# Shared settings for the booted-guest rig (sourced by scripts/guest/*).
# Everything built lives outside the checkout, under $VTPM_CACHE.

VTPM_CACHE="${VTPM_CACHE:-$HOME/.cache/vtpm}"
GUEST_CACHE="$VTPM_CACHE/guest"
TRIXIE_ROOT="$VTPM_CACHE/trixie"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# The newest Debian kernel installed by linux-image-amd64 (not the host's
# running kernel, which may be anything).
guest_kver() {
    if [ -n "${VTPM_GUEST_KVER:-}" ]; then
        echo "$VTPM_GUEST_KVER"
        return
    fi
    local k
    k="$(find /boot -maxdepth 1 -name 'vmlinuz-*-amd64' -printf '%f\n' 2>/dev/null |
        sed 's/^vmlinuz-//' | sort -V | tail -n1)"
    if [ -z "$k" ]; then
        echo "no /boot/vmlinuz-*-amd64: run scripts/guest/setup" >&2
        return 1
    fi
    echo "$k"
}

# The Debian mirror the host's apt sources use (only the registries the host
# can reach work, so reuse its mirror rather than guessing one).
debian_mirror() {
    local m=""
    if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
        m="$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' \
            /etc/apt/sources.list.d/*.sources 2>/dev/null |
            grep -v -- '-security' | grep '/debian/*$' | head -n1 || true)"
    fi
    if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
        m="$(awk '$1 == "deb" && $0 !~ /security/ {
                for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) { print $i; exit } }' \
            /etc/apt/sources.list || true)"
    fi
    echo "${m:-http://deb.debian.org/debian}"
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

log() { echo "[${0##*/}] $*" >&2; }

module_path() { echo "$GUEST_CACHE/module/$1/virtio_tpm.ko"; }

# Builds guest/linux/virtio_tpm.ko for kernel $1 out of tree, under the cache
# (the checkout stays clean); a no-op when the sources have not changed.
# Prints the module's path.
build_module() {
    local kver="$1" kdir="/lib/modules/$1/build" src="$REPO_ROOT/guest/linux"
    local bdir="$GUEST_CACHE/module/$1" sum
    [ -d "$kdir" ] || {
        echo "missing $kdir: install linux-headers-$kver (scripts/guest/setup)" >&2
        return 1
    }
    sum="$(cat "$src/virtio_tpm.c" "$src/Kbuild" | sha256sum | cut -c1-16)"
    if [ "$(cat "$bdir/.src-sum" 2>/dev/null || true)" != "$sum" ] ||
        [ ! -f "$bdir/virtio_tpm.ko" ]; then
        log "building virtio_tpm.ko for $kver"
        rm -rf "$bdir"
        mkdir -p "$bdir"
        cp "$src/virtio_tpm.c" "$src/Kbuild" "$bdir/"
        make -s -C "$kdir" M="$bdir" modules 2>&1 | grep -v 'Skipping BTF' >&2 || true
        [ -f "$bdir/virtio_tpm.ko" ] || {
            echo "module build failed" >&2
            return 1
        }
        echo "$sum" >"$bdir/.src-sum"
    fi
    echo "$bdir/virtio_tpm.ko"
}

# The kernel image to boot for $1. The bzImage's XZ decompression alone takes
# ~3 s under TCG, so when the kernel supports PVH boot (CONFIG_PVH) its
# uncompressed ELF vmlinux is extracted once into the cache and QEMU boots
# that directly (-kernel vmlinux, PVH entry). VTPM_GUEST_KERNEL=bzimage
# forces the plain /boot/vmlinuz.
guest_kernel() {
    local kver="$1" bz="/boot/vmlinuz-$1" out="$GUEST_CACHE/kernel/vmlinux-$1"
    local magic off tool
    if [ "${VTPM_GUEST_KERNEL:-vmlinux}" = bzimage ] ||
        ! grep -q '^CONFIG_PVH=y' "/boot/config-$kver" 2>/dev/null; then
        echo "$bz"
        return
    fi
    if [ ! -s "$out" ] || [ "$out" -ot "$bz" ]; then
        mkdir -p "$(dirname "$out")"
        for magic in 'xz:\xFD7zXZ\x00' 'zstd:\x28\xB5\x2F\xFD' 'gzip:\x1F\x8B\x08'; do
            tool="${magic%%:*}"
            command -v "$tool" >/dev/null || continue
            # shellcheck disable=SC2013  # byte offsets, one per line
            for off in $(LC_ALL=C grep -obUaP "${magic#*:}" "$bz" | cut -d: -f1); do
                tail -c +$((off + 1)) "$bz" | "$tool" -dc 2>/dev/null >"$out.tmp" || true
                if [ "$(head -c 4 "$out.tmp" | od -An -c | tr -d ' ')" = '177ELF' ]; then
                    mv "$out.tmp" "$out"
                    break 2
                fi
            done
        done
        rm -f "$out.tmp"
        [ -s "$out" ] || {
            log "could not extract vmlinux from $bz; booting the bzImage"
            echo "$bz"
            return
        }
    fi
    echo "$out"
}

# Prints the comment block at the top of script $1 (its usage).
usage_of() {
    awk 'NR == 1 || /^# shellcheck/ { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$1"
}

# Builds guest/bench/tpmbench.c as a static binary (it runs in the
# initramfs, which has no C library of its own) into the cache; a no-op when
# the source has not changed. Prints the binary's path.
build_tpmbench() {
    local src="$REPO_ROOT/guest/bench/tpmbench.c" sum out
    sum="$(sha256sum "$src" | cut -c1-16)"
    out="$GUEST_CACHE/bench/tpmbench-$sum"
    if [ ! -x "$out" ]; then
        log "building tpmbench (static)"
        mkdir -p "$GUEST_CACHE/bench"
        gcc -static -O2 -Wall -Wextra -Werror -o "$out.tmp" "$src" || {
            echo "building $src failed (needs gcc and libc6-dev)" >&2
            return 1
        }
        mv "$out.tmp" "$out"
    fi
    echo "$out"
}
