// SPDX-License-Identifier: GPL-2.0
/*
 * virtio TPM 2.0 front end for the vtpm backend.
 *
 * One virtqueue. A request is one descriptor chain: the TPM command
 * (device-readable, at most VTPM_BUF_SIZE bytes) followed by a
 * VTPM_BUF_SIZE byte response buffer (device-writable). The device
 * returns the chain with the response length as the used length.
 *
 * The TPM core serializes commands (chip->tpm_mutex), so at most one
 * request is in flight. send() adds the chain, kicks and waits for the
 * device with a timeout; status() then reports the command complete and
 * recv() copies the response out.
 *
 * Copyright (C) 2025 The vtpm authors
 */

#include <linux/completion.h>
#include <linux/jiffies.h>
#include <linux/module.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/tpm.h>
#include <linux/version.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>

/*
 * Exported (GPL) by the TPM core; declared in drivers/char/tpm/tpm.h,
 * which the kernel headers packages do not ship.
 */
struct tpm_chip *tpmm_chip_alloc(struct device *pdev,
				 const struct tpm_class_ops *ops);
int tpm_chip_register(struct tpm_chip *chip);
void tpm_chip_unregister(struct tpm_chip *chip);

#define VIRTIO_ID_VTPM_DEFAULT	62
#define VTPM_BUF_SIZE		4096

static unsigned int device_id = VIRTIO_ID_VTPM_DEFAULT;
module_param(device_id, uint, 0444);
MODULE_PARM_DESC(device_id, "virtio device id to bind (default 62)");

static unsigned int timeout_ms = 120000;
module_param(timeout_ms, uint, 0644);
MODULE_PARM_DESC(timeout_ms,
		 "how long to wait for the device to answer one command (ms)");

struct vtpm_dev {
	struct virtio_device *vdev;
	struct virtqueue *vq;
	struct tpm_chip *chip;
	spinlock_t lock;		/* serializes vq operations */
	struct completion done;
	u8 *cmd;			/* VTPM_BUF_SIZE, device-readable */
	u8 *rsp;			/* VTPM_BUF_SIZE, device-writable */
	unsigned int rsp_len;		/* used length of the last response */
	bool inflight;			/* a chain is owned by the device */
	bool ready;			/* rsp holds an unread response */
	bool dead;			/* timed out or broken: fail fast */
};

static void vtpm_vq_done(struct virtqueue *vq)
{
	struct vtpm_dev *vtpm = vq->vdev->priv;
	unsigned long flags;
	unsigned int len;
	bool got = false;

	spin_lock_irqsave(&vtpm->lock, flags);
	while (virtqueue_get_buf(vq, &len)) {
		vtpm->rsp_len = len;
		vtpm->inflight = false;
		got = true;
	}
	spin_unlock_irqrestore(&vtpm->lock, flags);

	if (got)
		complete(&vtpm->done);
}

static int vtpm_transfer(struct vtpm_dev *vtpm, size_t len)
{
	struct scatterlist out, in, *sgs[2] = { &out, &in };
	unsigned long flags, left;
	int rc;

	if (vtpm->dead)
		return -EIO;

	sg_init_one(&out, vtpm->cmd, len);
	sg_init_one(&in, vtpm->rsp, VTPM_BUF_SIZE);
	reinit_completion(&vtpm->done);
	vtpm->ready = false;

	spin_lock_irqsave(&vtpm->lock, flags);
	rc = virtqueue_add_sgs(vtpm->vq, sgs, 1, 1, vtpm, GFP_ATOMIC);
	if (!rc) {
		vtpm->inflight = true;
		if (!virtqueue_kick(vtpm->vq)) {
			/* broken queue: the chain can never come back */
			vtpm->dead = true;
			rc = -EIO;
		}
	}
	spin_unlock_irqrestore(&vtpm->lock, flags);
	if (rc) {
		dev_err(&vtpm->vdev->dev, "cannot queue command: %d\n", rc);
		return rc;
	}

	left = wait_for_completion_timeout(&vtpm->done,
					   msecs_to_jiffies(timeout_ms));

	spin_lock_irqsave(&vtpm->lock, flags);
	if (vtpm->inflight || virtqueue_is_broken(vtpm->vq)) {
		/*
		 * The device still owns the buffers and may write them at
		 * any time: never reuse them. Every later command fails at
		 * once; the buffers are freed only after the device reset
		 * in remove.
		 */
		vtpm->dead = true;
		rc = left ? -EIO : -ETIMEDOUT;
	}
	spin_unlock_irqrestore(&vtpm->lock, flags);
	if (rc) {
		dev_err(&vtpm->vdev->dev, "device %s; TPM disabled\n",
			rc == -ETIMEDOUT ? "did not answer" : "failed");
		return rc;
	}

	vtpm->ready = true;
	return 0;
}

/* 6.17 added the buffer size to .send (commit "tpm: add bufsiz parameter") */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 17, 0)
static int vtpm_send(struct tpm_chip *chip, u8 *buf, size_t bufsiz,
		     size_t len)
#else
static int vtpm_send(struct tpm_chip *chip, u8 *buf, size_t len)
#endif
{
	struct vtpm_dev *vtpm = dev_get_drvdata(&chip->dev);

	if (len < TPM_HEADER_SIZE || len > VTPM_BUF_SIZE)
		return -EINVAL;

	memcpy(vtpm->cmd, buf, len);
	return vtpm_transfer(vtpm, len);
}

static int vtpm_recv(struct tpm_chip *chip, u8 *buf, size_t len)
{
	struct vtpm_dev *vtpm = dev_get_drvdata(&chip->dev);
	struct tpm_header *hdr = (struct tpm_header *)vtpm->rsp;
	unsigned int n = vtpm->rsp_len;

	if (!vtpm->ready)
		return -EIO;
	vtpm->ready = false;

	/* The used length must be the response's own size (its header). */
	if (n < TPM_HEADER_SIZE || n > VTPM_BUF_SIZE || n > len ||
	    n != be32_to_cpu(hdr->length)) {
		dev_err_ratelimited(&vtpm->vdev->dev,
				    "bad response: used length %u, TPM size %u\n",
				    n, n >= TPM_HEADER_SIZE ?
				    be32_to_cpu(hdr->length) : 0);
		return -EIO;
	}

	memcpy(buf, vtpm->rsp, n);
	return n;
}

/* send() is synchronous: by the time the core polls, the command is done. */
static u8 vtpm_status(struct tpm_chip *chip)
{
	return 0;
}

static bool vtpm_req_canceled(struct tpm_chip *chip, u8 status)
{
	return false;
}

static void vtpm_cancel(struct tpm_chip *chip)
{
	/* Nothing to cancel: a command is never left running. */
}

static const struct tpm_class_ops vtpm_ops = {
	.flags = TPM_OPS_AUTO_STARTUP,
	.send = vtpm_send,
	.recv = vtpm_recv,
	.status = vtpm_status,
	.cancel = vtpm_cancel,
	.req_canceled = vtpm_req_canceled,
	.req_complete_mask = 0,
	.req_complete_val = 0,
};

static void vtpm_free(struct vtpm_dev *vtpm)
{
	kfree(vtpm->cmd);
	kfree(vtpm->rsp);
	kfree(vtpm);
}

static int vtpm_probe(struct virtio_device *vdev)
{
	struct vtpm_dev *vtpm;
	struct tpm_chip *chip;
	int rc;

	vtpm = kzalloc(sizeof(*vtpm), GFP_KERNEL);
	if (!vtpm)
		return -ENOMEM;
	vtpm->cmd = kmalloc(VTPM_BUF_SIZE, GFP_KERNEL);
	vtpm->rsp = kmalloc(VTPM_BUF_SIZE, GFP_KERNEL);
	if (!vtpm->cmd || !vtpm->rsp) {
		rc = -ENOMEM;
		goto err_free;
	}
	vtpm->vdev = vdev;
	spin_lock_init(&vtpm->lock);
	init_completion(&vtpm->done);
	vdev->priv = vtpm;

	vtpm->vq = virtio_find_single_vq(vdev, vtpm_vq_done, "tpm");
	if (IS_ERR(vtpm->vq)) {
		rc = PTR_ERR(vtpm->vq);
		goto err_free;
	}

	chip = tpmm_chip_alloc(&vdev->dev, &vtpm_ops);
	if (IS_ERR(chip)) {
		rc = PTR_ERR(chip);
		goto err_vqs;
	}
	dev_set_drvdata(&chip->dev, vtpm);
	chip->flags |= TPM_CHIP_FLAG_TPM2;
	vtpm->chip = chip;

	virtio_device_ready(vdev);

	rc = tpm_chip_register(chip);
	if (rc) {
		dev_err(&vdev->dev, "TPM registration failed: %d\n", rc);
		goto err_reset;
	}
	dev_info(&vdev->dev, "virtio TPM 2.0 (virtio id %u)\n",
		 vdev->id.device);
	return 0;

err_reset:
	virtio_reset_device(vdev);
err_vqs:
	vdev->config->del_vqs(vdev);
err_free:
	vdev->priv = NULL;
	vtpm_free(vtpm);
	return rc;
}

static void vtpm_remove(struct virtio_device *vdev)
{
	struct vtpm_dev *vtpm = vdev->priv;

	/*
	 * A surprise-removed device is marked broken by the transport and
	 * will never answer: wake a waiting command now instead of letting
	 * it run into its timeout (it sees the broken queue and fails).
	 */
	if (virtqueue_is_broken(vtpm->vq))
		complete(&vtpm->done);

	/* Waits for a command in progress; no new ones start after it. */
	tpm_chip_unregister(vtpm->chip);

	/* After the reset the device no longer touches our buffers. */
	virtio_reset_device(vdev);
	vdev->config->del_vqs(vdev);
	vdev->priv = NULL;
	vtpm_free(vtpm);
	/* The chip itself is devm-managed and goes away with vdev. */
}

/* Not const: module_init patches in the device_id parameter. */
static struct virtio_device_id vtpm_id_table[] = {
	{ VIRTIO_ID_VTPM_DEFAULT, VIRTIO_DEV_ANY_ID },
	{ 0 },
};
MODULE_DEVICE_TABLE(virtio, vtpm_id_table);

static struct virtio_driver vtpm_driver = {
	.driver.name = KBUILD_MODNAME,
	.driver.owner = THIS_MODULE,
	.id_table = vtpm_id_table,
	.probe = vtpm_probe,
	.remove = vtpm_remove,
};

static int __init vtpm_init(void)
{
	if (!device_id || device_id == VIRTIO_DEV_ANY_ID) {
		pr_err("virtio_tpm: invalid device_id %u\n", device_id);
		return -EINVAL;
	}
	vtpm_id_table[0].device = device_id;
	return register_virtio_driver(&vtpm_driver);
}

static void __exit vtpm_exit(void)
{
	unregister_virtio_driver(&vtpm_driver);
}

module_init(vtpm_init);
module_exit(vtpm_exit);

MODULE_DESCRIPTION("virtio TPM 2.0 driver for the vtpm backend");
MODULE_LICENSE("GPL");
