# In-guest test: the vtpm module loads with no matching virtio device, sits
# idle without errors, and unloads. Boot with no TPM attached:
#   scripts/guest/boot --no-tpm --steps scripts/guest/steps/idle.sh

. /usr/lib/vtpm/steps-lib.sh

step "virtio_tpm is loaded"
grep '^virtio_tpm ' /proc/modules || fail "virtio_tpm not in /proc/modules"
echo "device_id=$(cat /sys/module/virtio_tpm/parameters/device_id)"
ls /sys/bus/virtio/drivers/virtio_tpm >/dev/null || fail "driver not registered on the virtio bus"

step "no device bound, no TPM"
bound=$(find /sys/bus/virtio/drivers/virtio_tpm -mindepth 1 -maxdepth 1 -name 'virtio*' | wc -l)
[ "$bound" -eq 0 ] || fail "virtio_tpm bound to $bound device(s)"
[ ! -e /dev/tpm0 ] || fail "/dev/tpm0 exists"

step "no errors from the module in dmesg"
dmesg | grep -iE 'virtio_tpm|vtpm' || true
# (an unsigned out-of-tree module taints the kernel: expected, not an error)
dmesg | grep -iE 'virtio_tpm' | grep -vE 'taints kernel|module verification failed' |
	grep -iE 'error|fail|bug|warn' && fail "errors in dmesg"
dmesg | grep -iE 'BUG:|WARNING:|Oops' && fail "kernel warning"

step "rmmod virtio_tpm"
rmmod virtio_tpm
grep -q '^virtio_tpm ' /proc/modules && fail "still loaded"
exit 0
