"""The DALI pipeline: file list in, uint8 RGB batches and int32 labels out. No TensorFlow.

Kept free of TensorFlow so it can be benchmarked alone on a machine with only DALI (and
numpy) installed (``python -m fastfood.benchmark.dali_alone --help``). ``dali.py`` wraps
the same pipeline in ``DALIDataset`` for training.

Order. ``fn.readers.file`` gets an explicit ``files=`` list in the exact order we want and
``random_shuffle=False``: in training, every epoch's permutation (``order.epoch_order``),
back to back for the rest of the run, so one pipeline (nvJPEG handles, pinned buffers,
threads) serves the whole run; in eval, the shard padded to whole batches, so one pipeline
serves every validation pass, each pass reading exactly one reader epoch. DALI's own shuffling (``random_shuffle=True``) draws from
a fixed-size buffer with DALI's RNG, so the order would be neither the one tf.data uses nor
recomputable for resuming mid-epoch. ``shard_id``/``num_shards`` are the reader's own; the
fastfood loader slices the shard (and skipped batches) out in numpy with the same arithmetic
(``order.shard_bounds``, checked against this reader in the tests) and passes one shard.
Padding slots get the label ``PAD_LABEL`` (-1), which the metrics leave out (labels are
handed to the reader shifted by one, since it takes no negative labels, and shifted back).

Decoding. ``device='gpu'`` decodes with ``device='mixed'`` (nvJPEG, the hardware JPEG
decoder taking ``HW_DECODER_LOAD`` of the images) and resizes on the GPU; ``'cpu'`` uses
libjpeg-turbo. EXIF orientation is the request's ``exif``: ``adjust_orientation`` on every
decoder and on ``peek_image_shape``, so crops and the eval window are taken in upright
coordinates, as tf.data's ``exif.py`` does. On the GPU
``jpeg_fancy_upsampling=True`` makes nvJPEG upsample chroma as libjpeg does, for parity.

Training ('inception' crop, the default): ``fn.decoders.image_random_crop`` with area
0.08-1 and aspect ratio 3/4-4/3 decodes only the crop window, then the resize to S x S with a
50% coin-flip mirror (on the CPU in the same pass; on the GPU ``fn.crop_mirror_normalize``).
'square' crop: a random square of side ``min(h, w) - 2*margin`` via ``fn.decoders.image_crop``.

Then ``--augment`` (RandAugment / TrivialAugment-wide, DALI's ``auto_aug`` operators with
the ranges of ``spec.AUGMENT_OPS``) and ``--random-erasing`` (``fn.erase``), see
``dali_augment.py``. The auto-augmentations pick an op per sample with conditionals, so a
pipeline that uses them is made with ``enable_conditionals=True``; 'basic' keeps the
plain graph.

Eval: the centre square ``side = min(h, w)`` at ``((h-side)//2, (w-side)//2)``, computed
from ``fn.peek_image_shape`` with DALI integer arithmetic (floor division, as TensorFlow),
decoded with ``fn.decoders.image_slice`` (decode only the window), then the same
antialiased linear resize.

Resize. On the CPU backend ``fn.fastfood_resize`` (``fastfood/loaders/native``, compiled on
first use) computes TensorFlow's antialiased bilinear filter bit for bit at about a quarter
of ``fn.resize``'s cost, which had cost more than the decode; on the GPU ``fn.resize``. Measured against ``preprocess.eval_image``: mean absolute
difference about 0.01-0.2 per image on 0-255 (see tests/test_parity.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import nvidia.dali.math as dmath
import nvidia.dali.tfrecord as tfrec
from nvidia.dali import fn, pipeline_def, types

from fastfood.loaders import dali_augment, native
from fastfood.loaders.budget import Budget, budget
from fastfood.loaders.order import padded_eval_indices
from fastfood.loaders.request import LoaderRequest
from fastfood.loaders.spec import AREA_RANGE, ASPECT_RANGE, CROP_ATTEMPTS, SQUARE_MARGIN

# nvJPEG settings for device='mixed', after NVIDIA's DALI ResNet-50 examples: send 65% of
# the JPEGs to the hardware decoder (A100/H100) and the rest to the CUDA decoder, which run
# side by side; pad nvJPEG's device and pinned host buffers (NVIDIA's values, sized for the
# largest ImageNet sample) so they are not regrown while training.
HW_DECODER_LOAD = 0.65
DEVICE_MEMORY_PADDING = 211_025_920
HOST_MEMORY_PADDING = 140_544_512
# The hardware decoder preallocates a whole batch of outputs of this size. NVIDIA uses
# ImageNet's largest image (5980 x 6430), which at batch 64 reserves several GB of GPU memory
# next to the model; Food-101's images are at most 512 px a side. A larger image only costs
# a one-time reallocation.
PREALLOCATE_WIDTH_HINT = 512
PREALLOCATE_HEIGHT_HINT = 512


def decoder_args(device: str, paddings: tuple[int, int] | None = None, exif: bool = False
                 ) -> dict:
    """Keyword arguments shared by every image decoder in the pipeline.

    ``paddings``: nvJPEG's (device, pinned host) buffer paddings in bytes, sized for the
    data by ``budget.budget``; NVIDIA's ImageNet values when not given. ``exif``: apply
    the EXIF orientation.
    """
    args: dict = {"output_type": types.RGB, "adjust_orientation": bool(exif)}
    device_padding, host_padding = paddings or (DEVICE_MEMORY_PADDING, HOST_MEMORY_PADDING)
    if device == "gpu":
        args.update(
            device="mixed",
            hw_decoder_load=HW_DECODER_LOAD,
            device_memory_padding=device_padding,
            host_memory_padding=host_padding,
            preallocate_width_hint=PREALLOCATE_WIDTH_HINT,
            preallocate_height_hint=PREALLOCATE_HEIGHT_HINT,
            jpeg_fancy_upsampling=True,
        )
    else:
        args.update(device="cpu")
    return args


def _resize(images, image_size: int, device: str, mirror=None):
    """Antialiased linear resize to S x S: the filter ``tf.image.resize`` uses (bilinear, antialias).

    On the CPU backend fastfood's own operator computes it (``native``: bit-identical to
    TensorFlow, about 4x faster than ``fn.resize`` here) and applies ``mirror`` (a per-sample
    flag) as it writes; on the GPU, or when that operator cannot be built, DALI's
    ``fn.resize`` and then ``fn.crop_mirror_normalize`` for the flip.
    """
    if device == "cpu" and native.resize_available():
        extra = {} if mirror is None else {"mirror": mirror}
        return fn.fastfood_resize(images, height=image_size, width=image_size, **extra)
    images = fn.resize(
        images,
        resize_x=image_size,
        resize_y=image_size,
        interp_type=types.INTERP_LINEAR,
        antialias=True,
    )
    if mirror is None:
        return images
    return fn.crop_mirror_normalize(
        images,
        crop=(image_size, image_size),
        mirror=mirror,
        output_layout="HWC",
        dtype=types.UINT8,
    )


def _graph(
    files: Sequence[str],
    labels: Sequence[int],
    *,
    training: bool,
    image_size: int,
    device: str = "cpu",
    crop: str = "inception",
    paddings: tuple[int, int] | None = None,
    records: tuple[Sequence[str], Sequence[str]] | None = None,
    augment: str = "basic",
    random_erasing: float = 0.0,
    exif: bool = False,
):
    """Images uint8 ``[S, S, 3]`` HWC RGB and scalar int32 labels, per sample.

    ``records``: packed shards instead of files: (TFRecord paths, index paths), one pair
    per run of records in reading order (``dali.py`` writes each run's index, which DALI
    follows entry by entry); the labels are the records' own, and ``files``/``labels``
    are not used.

    ``device``: 'gpu' (mixed decode, GPU resize; outputs on the GPU) or 'cpu'.
    ``labels`` are the true labels shifted up by one (0 marks a padding slot, which comes
    out as -1). Pipeline arguments (``batch_size``, ``num_threads``, ``device_id``,
    ``seed``, ...) are the usual ``@pipeline_def`` ones; ``device_id=None`` for a CPU-only
    pipeline.
    """
    if device not in ("cpu", "gpu"):
        raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
    if records is not None:
        read = fn.readers.tfrecord(
            path=list(records[0]), index_path=list(records[1]), random_shuffle=False,
            features={"image/encoded": tfrec.FixedLenFeature((), tfrec.string, ""),
                      "image/class/label": tfrec.FixedLenFeature([1], tfrec.int64, -1)},
            name="Reader")
        encoded, label = read["image/encoded"], read["image/class/label"] + 1
    else:
        encoded, label = fn.readers.file(
            files=[str(f) for f in files],
            labels=[int(x) for x in labels],
            random_shuffle=False,
            name="Reader",
        )
    dec = decoder_args(device, paddings, exif)
    if training:
        if crop == "inception":
            images = fn.decoders.image_random_crop(
                encoded,
                random_area=list(AREA_RANGE),
                random_aspect_ratio=list(ASPECT_RANGE),
                num_attempts=CROP_ATTEMPTS,
                **dec,
            )
        elif crop == "square":
            shape = fn.peek_image_shape(encoded, adjust_orientation=exif)
            short = dmath.min(shape[0], shape[1])
            side = short - 2 * SQUARE_MARGIN * (short > 4 * SQUARE_MARGIN)
            side = fn.cast(side, dtype=types.FLOAT)
            images = fn.decoders.image_crop(
                encoded,
                crop_w=side,
                crop_h=side,
                crop_pos_x=fn.random.uniform(range=[0.0, 1.0]),
                crop_pos_y=fn.random.uniform(range=[0.0, 1.0]),
                **dec,
            )
        else:
            raise ValueError(f"crop must be 'inception' or 'square', got {crop!r}")
        images = _resize(images, image_size, device, mirror=fn.random.coin_flip(probability=0.5))
        images = dali_augment.auto_augment(images, augment, image_size)
        images = dali_augment.random_erase(images, random_erasing, image_size)
    else:
        shape = fn.peek_image_shape(encoded, adjust_orientation=exif)
        h, w = shape[0], shape[1]
        side = dmath.min(h, w)
        anchor = fn.stack((h - side) // 2, (w - side) // 2)
        extent = fn.stack(side, side)
        images = fn.decoders.image_slice(encoded, anchor, extent, axis_names="HW", **dec)
        images = _resize(images, image_size, device)
    label = fn.cast(fn.reshape(label, shape=[]), dtype=types.INT32) - 1
    if device == "gpu":
        label = label.gpu()
    return images, label


fastfood_pipeline = pipeline_def(_graph)
_conditional_pipeline = pipeline_def(enable_conditionals=True)(_graph)


def make_pipeline(
    files: Sequence[str],
    labels: Sequence[int],
    request: LoaderRequest,
    *,
    device: str = "cpu",
    device_id: int | None = None,
    share: Budget | None = None,
    records: tuple[Sequence[str], Sequence[str]] | None = None,
):
    """Build (not run) the pipeline for a request over files already in reading order.

    Training: ``files`` in the order they are to be read (``order.run_indices``). Eval:
    the files to read, with label -1 on padding slots; a list that is not a whole number
    of batches is padded here. ``share``: this pipeline's threads and decoder paddings
    (``budget.budget`` for one pipeline when not given).
    """
    share = share or budget(requested_threads=request.num_threads)
    files, labels = list(files), [int(x) for x in labels]
    if records is None and not request.training and len(files) % request.batch_size:
        indices, valid = padded_eval_indices(len(files), request.batch_size)
        files = [files[i] for i in indices]
        labels = [labels[i] if ok else -1 for i, ok in zip(indices, valid)]
    labels = [x + 1 for x in labels]
    augmented = request.training and request.augment != "basic"
    pipeline = _conditional_pipeline if augmented else fastfood_pipeline
    return pipeline(
        files,
        labels,
        training=request.training,
        image_size=request.image_size,
        device=device,
        crop=request.crop,
        augment=request.augment,
        random_erasing=request.random_erasing,
        exif=request.exif,
        paddings=(share.device_memory_padding, share.host_memory_padding),
        records=records,
        batch_size=request.batch_size,
        num_threads=share.num_threads,
        device_id=device_id if device == "gpu" else None,
        seed=request.seed,
        prefetch_queue_depth=2,
    )
