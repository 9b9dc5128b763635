# In-guest benchmark (scripts/guest/bench): round-trip latency of raw
# TPM2_GetRandom(32) and TPM2_PCR_Extend(16, sha256) through /dev/tpmrm0
# and /dev/tpm0, measured by tpmbench (guest/bench/tpmbench.c) with
# CLOCK_MONOTONIC around write()+read(). Works with any TPM the guest kernel
# drives (virtio_tpm, tpm_crb, tpm_tis). BENCH_N / BENCH_WARMUP from
# /etc/vtpm-test.env (defaults 2000 / 200).

. /usr/lib/vtpm/steps-lib.sh

wait_tpmrm0
echo "driver: $(basename "$(readlink /sys/class/tpm/tpm0/device/driver)")"

for dev in /dev/tpmrm0 /dev/tpm0; do
	step "tpmbench -d $dev -w ${BENCH_WARMUP:-200} -n ${BENCH_N:-2000}"
	tpmbench -d "$dev" -w "${BENCH_WARMUP:-200}" -n "${BENCH_N:-2000}" ||
		fail "tpmbench on $dev failed"
done
exit 0
