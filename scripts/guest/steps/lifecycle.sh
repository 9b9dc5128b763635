# In-guest test: unbind/bind the device, unload and reload the module while a
# TPM is attached (the driver's remove path), checking the TPM works after
# each step. Boot with a virtio TPM (--vhost-user).

. /usr/lib/vtpm/steps-lib.sh
wait_tpm() {
	wait_tpmrm0
	r=$(tpm2_getrandom 8 --hex) || fail "getrandom failed"
	echo "getrandom: $r"
}
drv=/sys/bus/virtio/drivers/virtio_tpm

step "initial probe"
wait_tpm
dev=$(find "$drv" -mindepth 1 -maxdepth 1 -name 'virtio*' -exec basename {} \;)
[ -n "$dev" ] || fail "no device bound to virtio_tpm"
echo "bound: $dev"

step "unbind $dev"
echo "$dev" >"$drv/unbind"
[ ! -e /dev/tpmrm0 ] || fail "/dev/tpmrm0 still there after unbind"

step "bind $dev"
echo "$dev" >"$drv/bind"
wait_tpm

step "rmmod with the device bound"
rmmod virtio_tpm
[ ! -e /dev/tpmrm0 ] || fail "/dev/tpmrm0 still there after rmmod"

step "insmod again"
# shellcheck disable=SC2086
insmod /lib/modules/rig/virtio_tpm.ko ${VTPM_DEVICE_ID:+device_id=$VTPM_DEVICE_ID} $VTPM_MODPARAMS
wait_tpm
tpm2_pcrread sha256:16

dmesg | grep -iE 'BUG:|WARNING:|Oops|refcount' && fail "kernel warnings"
exit 0
