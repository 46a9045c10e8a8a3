"""Trained models in object storage, so that a web process that never trained serves the published
version without a shared disk.

A version's artifact is a folder of two files under ``MODEL_ARTIFACT_ROOT``:
``event-<id>/<fingerprint[:20]>/{model,index}.npz`` (`fit.artifact_dir`). With
``MODEL_ARTIFACT_BUCKET`` set, the training uploads them to
``s3://<bucket>/<MODEL_ARTIFACT_PREFIX>event-<id>/<fingerprint[:20]>/`` before the version is
recorded, and a process that loads a version whose folder it does not have downloads it into its
own ``MODEL_ARTIFACT_ROOT`` first (into a temporary folder renamed into place, so two processes
downloading at once never read a half-written file). S3 through boto3, the client of the
Personalize backend; any S3-compatible store through ``AWS_S3_ENDPOINT_URL``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

FILES = ("model.npz", "index.npz")
DOWNLOAD_FAILED = "Model artifact {key} could not be read from s3://{bucket}: {error}"


class ArtifactUnavailable(Exception):
    pass


def enabled() -> bool:
    return bool(settings.MODEL_ARTIFACT_BUCKET)


def _client():
    import boto3

    return boto3.client(
        "s3",
        region_name=settings.AWS_REGION or None,
        endpoint_url=settings.AWS_S3_ENDPOINT_URL or None,
    )


def key_prefix(folder: Path) -> str:
    """The object key prefix of an artifact folder: its last two parts (event, fingerprint), the
    same in every process whatever its MODEL_ARTIFACT_ROOT."""
    return f"{settings.MODEL_ARTIFACT_PREFIX}{folder.parent.name}/{folder.name}/"


def upload(folder: Path) -> None:
    """Put the artifact's files in the bucket (nothing when no bucket is configured). Raises on
    failure: a version other processes cannot load must not be recorded."""
    if not enabled():
        return
    client = _client()
    prefix = key_prefix(folder)
    for name in FILES:
        client.upload_file(str(folder / name), settings.MODEL_ARTIFACT_BUCKET, prefix + name)
    logger.info("model artifact uploaded to s3://%s/%s", settings.MODEL_ARTIFACT_BUCKET, prefix)


def local_folder(artifact: str) -> Path:
    """Where this process reads the artifact recorded as ``artifact``: that folder when it is
    here, else (with a bucket) a copy under this process's MODEL_ARTIFACT_ROOT, downloaded once.
    Raises ArtifactUnavailable when the bucket does not have it."""
    folder = Path(artifact)
    if (folder / FILES[0]).exists() or not enabled():
        return folder
    local = Path(settings.MODEL_ARTIFACT_ROOT) / folder.parent.name / folder.name
    if all((local / name).exists() for name in FILES):
        return local
    local.parent.mkdir(parents=True, exist_ok=True)
    prefix = key_prefix(folder)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=local.parent))
    try:
        client = _client()
        for name in FILES:
            client.download_file(settings.MODEL_ARTIFACT_BUCKET, prefix + name, str(staging / name))
    except Exception as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ArtifactUnavailable(
            DOWNLOAD_FAILED.format(key=prefix, bucket=settings.MODEL_ARTIFACT_BUCKET, error=exc)
        ) from exc
    try:
        os.rename(staging, local)  # atomic; another process may have won the race
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("model artifact downloaded from s3://%s/%s", settings.MODEL_ARTIFACT_BUCKET, prefix)
    return local
