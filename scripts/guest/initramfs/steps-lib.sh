# Shared by the in-guest steps scripts (scripts/guest/steps/*.sh), which
# start with `. /usr/lib/vtpm/steps-lib.sh`; installed in the base
# initramfs by build-initramfs.

# step TEXT: marks the start of a step in the console log.
step() { echo "VTPM-STEP: $*"; }

# fail TEXT: the failing step's marker, the kernel's last TPM messages, and
# exit 1 (the init prints VTPM-GUEST-RESULT: FAIL). A script may redefine it
# after sourcing this file.
fail() {
	echo "VTPM-STEP-FAIL: $*"
	echo "(kernel TPM messages:)"
	dmesg | grep -iE 'tpm' | tail -n 8
	exit 1
}

# wait_tpmrm0: waits up to 15 s for the driver's /dev/tpmrm0.
wait_tpmrm0() {
	step "wait for /dev/tpmrm0"
	i=0
	while [ ! -c /dev/tpmrm0 ]; do
		i=$((i + 1))
		[ "$i" -le 150 ] || fail "no /dev/tpmrm0 after 15 s"
		sleep 0.1
	done
}
