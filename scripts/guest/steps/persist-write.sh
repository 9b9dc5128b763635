# In-guest test, persistence across a backend restart, boot 1 of 2: defines
# an NV index and writes it, then the guest powers off. The host then stops
# the backend (SIGTERM) and starts a new one on the same state file, and
# boot 2 (steps/persist-read.sh) reads the index back. Data and index come
# from /etc/vtpm-test.env (NV_INDEX, NV_DATA: hex, written on the host).

. /usr/lib/vtpm/steps-lib.sh
# shellcheck disable=SC2059  # the format is \xNN escapes only
printf "$(printf '%s' "$NV_DATA" | sed 's/../\\x&/g')" >/tmp/nv-data
[ "$(wc -c </tmp/nv-data)" -eq 32 ] || fail "NV_DATA is not 32 bytes"

wait_tpmrm0

step "the index is not defined yet (fresh state file)"
tpm2_getcap handles-nv-index | tee /tmp/nv-before
grep -qi "$NV_INDEX" /tmp/nv-before && fail "$NV_INDEX already defined"

step "tpm2_nvdefine $NV_INDEX -C o -s $(wc -c </tmp/nv-data) -a ownerread|ownerwrite"
tpm2_nvdefine "$NV_INDEX" -C o -s "$(wc -c </tmp/nv-data)" -a "ownerread|ownerwrite" ||
	fail "tpm2_nvdefine failed"

step "tpm2_nvwrite $NV_INDEX -C o"
tpm2_nvwrite "$NV_INDEX" -C o -i /tmp/nv-data || fail "tpm2_nvwrite failed"

step "tpm2_nvread $NV_INDEX -C o (same boot)"
tpm2_nvread "$NV_INDEX" -C o -o /tmp/nv-read || fail "tpm2_nvread failed"
od -An -tx1 /tmp/nv-read
cmp /tmp/nv-data /tmp/nv-read || fail "read back differs"

step "tpm2_shutdown -c (orderly, as a guest OS does at power off)"
# (the backend commits NV on every change anyway)
tpm2_shutdown -c || echo "(tpm2_shutdown failed; the backend must not need it)"
exit 0
