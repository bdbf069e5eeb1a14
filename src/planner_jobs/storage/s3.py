"""Export files in a private S3 bucket (or any S3-compatible service), handed out as SigV4
presigned links."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import boto3.exceptions
import botocore.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from planner_jobs.storage.port import StorageError, TransientStorageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MULTIPART_THRESHOLD = 16 * 1024 * 1024


@dataclass(frozen=True)
class S3Storage:
    client: S3Client
    bucket: str
    prefix: str
    transfer: TransferConfig

    @classmethod
    def connect(
        cls,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        multipart_threshold: int = MULTIPART_THRESHOLD,
    ) -> S3Storage:
        # SigV4 explicitly: boto3 still presigns with SigV2 unless told otherwise.
        config = Config(
            signature_version="s3v4",
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
        )
        client = boto3.client("s3", endpoint_url=endpoint_url, config=config)
        transfer = TransferConfig(
            multipart_threshold=multipart_threshold, multipart_chunksize=multipart_threshold
        )
        return cls(client=client, bucket=bucket, prefix=prefix, transfer=transfer)

    def _object(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, source: Path, *, media_type: str) -> None:
        # A failed multipart upload is aborted by s3transfer: no partial object appears.
        try:
            self.client.upload_file(
                str(source),
                self.bucket,
                self._object(key),
                ExtraArgs={"ContentType": media_type},
                Config=self.transfer,
            )
        except boto3.exceptions.S3UploadFailedError as exc:
            # s3transfer wraps the last error of the (aborted) upload; classify that one.
            cause = exc.__cause__ or exc.__context__
            raise _storage_error("upload", cause if isinstance(cause, Exception) else exc) from exc
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise _storage_error("upload", exc) from exc
        finally:
            source.unlink(missing_ok=True)

    def link(self, key: str, *, export_id: str, filename: str, expires_at: dt.datetime) -> str:
        seconds = max(1, math.ceil((expires_at - dt.datetime.now(dt.UTC)).total_seconds()))
        return self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self._object(key),
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
            ExpiresIn=seconds,
        )

    def served_file(self, key: str) -> None:
        return None  # links lead to S3 itself

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._object(key))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise _storage_error("delete", exc) from exc


def _storage_error(action: str, exc: Exception) -> StorageError:
    if isinstance(exc, botocore.exceptions.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = exc.response.get("Error", {}).get("Code", "?")
        kind = TransientStorageError if status >= 500 or status == 429 else StorageError
        return kind(f"S3 {action} failed: {code} (HTTP {status})")
    # Connection errors, timeouts, a truncated response: worth another try.
    return TransientStorageError(f"S3 {action} failed: {exc}")
