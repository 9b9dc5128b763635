# In-guest check, run before the default steps (scripts/guest/emulator-boot
# concatenates them): the TPM is QEMU's tpm-crb or tpm-tis in front of a
# -tpmdev emulator backend, and the kernel's stock driver for it bound.
# EXPECT_DRIVER (tpm_crb | tpm_tis) is set by emulator-boot in a first line.

step "stock TPM driver: expect $EXPECT_DRIVER"
i=0
while [ ! -e /sys/class/tpm/tpm0/device/driver ]; do
	i=$((i + 1))
	[ "$i" -le 150 ] || fail "no /sys/class/tpm/tpm0 after 15 s"
	sleep 0.1
done
drv=$(basename "$(readlink /sys/class/tpm/tpm0/device/driver)")
echo "tpm0 driver: $drv ($(basename "$(readlink -f /sys/class/tpm/tpm0/device)"))"
echo "TPM version: $(cat /sys/class/tpm/tpm0/tpm_version_major 2>/dev/null)"
dmesg | grep -iE 'tpm|crb|MSFT0101' || true
[ "$drv" = "$EXPECT_DRIVER" ] || fail "tpm0 is bound to $drv, expected $EXPECT_DRIVER"
case "$EXPECT_DRIVER" in
tpm_tis)
	# tpm_tis announces the chip it probed: "tpm_tis MSFT0101:00: 2.0 TPM (device-id 0x1, rev-id 1)"
	dmesg | grep -E 'tpm_tis .*2\.0 TPM' || fail "no 'tpm_tis ... 2.0 TPM' line in dmesg"
	;;
tpm_crb)
	# tpm_crb binds silently on success: no tpm_crb line must be an error,
	# and the ACPI device it bound is the CRB one (MSFT0101, start method 7)
	dmesg | grep -E 'tpm_crb' | grep -iE 'error|fail|-[0-9]+' && fail "tpm_crb errors in dmesg"
	bound=no
	for d in /sys/bus/acpi/drivers/tpm_crb/MSFT0101:*; do [ -e "$d" ] && bound=yes; done
	[ "$bound" = yes ] || fail "tpm_crb is not bound to MSFT0101"
	;;
esac
