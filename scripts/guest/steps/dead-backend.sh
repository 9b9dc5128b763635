# In-guest test: the backend stops answering in the middle of a session. The
# driver must give up after its timeout (boot with virtio_tpm.timeout_ms=3000)
# and fail every later command at once; nothing may hang, and the module must
# still unload. Used with a backend that hangs on TPM2_PCR_Extend (CC 0x182), which
# only the test sends:
#   mock-vhost-user-tpm ... --hang-on-cc 0x182
#   scripts/guest/boot --vhost-user SOCK --steps scripts/guest/steps/dead-backend.sh \
#       --append virtio_tpm.timeout_ms=3000

. /usr/lib/vtpm/steps-lib.sh
now() { cut -d' ' -f1 /proc/uptime; }

wait_tpmrm0

step "the TPM answers while the backend is alive"
tpm2_getrandom 8 --hex
echo

step "tpm2_pcrextend: the backend never answers; the command must fail, not hang"
t0=$(now)
if tpm2_pcrextend "16:sha256=$PCR16_EXTEND"; then
	fail "tpm2_pcrextend succeeded against a dead backend"
fi
t1=$(now)
echo "failed after $(echo "$t0 $t1" | awk '{printf "%.1f", $2 - $1}') s"
dmesg | grep -E 'virtio_tpm|tpm tpm0' | tail -n 5
dmesg | grep -q 'did not answer' || fail "no timeout message from the driver"

step "later commands fail at once"
t0=$(now)
if tpm2_getrandom 8 --hex; then
	fail "getrandom succeeded after the device was declared dead"
fi
t1=$(now)
awk -v a="$t0" -v b="$t1" 'BEGIN { d = b - a; printf "failed after %.2f s\n", d; exit !(d < 2) }' ||
	fail "a command on a dead device took too long"

step "rmmod virtio_tpm with the dead device"
rmmod virtio_tpm
[ ! -e /dev/tpm0 ] || fail "/dev/tpm0 still there"
exit 0
