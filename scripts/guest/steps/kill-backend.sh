# In-guest test: the backend process is killed (SIGKILL) while the guest is
# using the TPM. The host kills it when the console shows the marker line
# below (scripts/guest/boot --on-marker VTPM-KILL-BACKEND-NOW CMD). Every
# TPM command after that must fail with an error, within the driver's
# timeout (boot with virtio_tpm.timeout_ms=3000), and the guest must get to
# its result marker and power off: nothing may hang.

. /usr/lib/vtpm/steps-lib.sh
now() { cut -d' ' -f1 /proc/uptime; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

wait_tpmrm0

step "the TPM answers while the backend is alive"
tpm2_getrandom 8 --hex || fail "getrandom failed before the kill"
echo
tpm2_pcrextend "16:sha256=$PCR16_EXTEND" || fail "pcrextend failed before the kill"

step "asking the host to kill the backend; commands in a loop until one fails"
echo "VTPM-KILL-BACKEND-NOW"
t0=$(now)
n=0
while tpm2_getrandom 8 --hex >/dev/null 2>/tmp/err; do
	n=$((n + 1))
	awk -v a="$t0" -v b="$(now)" 'BEGIN { exit !(b - a > 60) }' &&
		fail "the TPM still answers 60 s after the kill ($n commands)"
done
echo "first failure after $(elapsed "$t0") s ($n commands succeeded after the marker):"
tail -n 3 /tmp/err
dmesg | grep -E 'virtio_tpm|tpm tpm0' | tail -n 5

step "later commands fail too, and fast"
for cmd in "tpm2_getrandom 8 --hex" "tpm2_pcrread sha256:16" "tpm2_selftest"; do
	t1=$(now)
	if $cmd >/dev/null 2>/tmp/err; then
		fail "'$cmd' succeeded after the backend died"
	fi
	d=$(elapsed "$t1")
	echo "'$cmd' failed after $d s: $(grep -m1 -E 'ERROR' /tmp/err)"
	awk -v d="$d" 'BEGIN { exit !(d < 5) }' || fail "'$cmd' took $d s to fail"
done

step "rmmod virtio_tpm with the dead device"
rmmod virtio_tpm || fail "rmmod failed"
[ ! -e /dev/tpm0 ] || fail "/dev/tpm0 still there"
exit 0
