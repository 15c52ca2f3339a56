#!/usr/bin/env python3
"""A small S3 client (boto3) for the tests: set up buckets and damage tables
the way a person with bucket access would. Prints JSON.

    s3ctl.py ENDPOINT AK SK REGION create-bucket BUCKET [versioned|unversioned]
    s3ctl.py ENDPOINT AK SK REGION list BUCKET PREFIX
    s3ctl.py ENDPOINT AK SK REGION list-versions BUCKET PREFIX
    s3ctl.py ENDPOINT AK SK REGION delete BUCKET KEY...
    s3ctl.py ENDPOINT AK SK REGION delete-prefix BUCKET PREFIX
    s3ctl.py ENDPOINT AK SK REGION delete-matching BUCKET PREFIX SUBSTRING
"""
import json
import sys

import boto3


def main():
    endpoint, ak, sk, region, cmd, bucket, *rest = sys.argv[1:]
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ak,
        aws_secret_access_key=sk,
        region_name=region,
    )
    if cmd == "create-bucket":
        s3.create_bucket(Bucket=bucket)
        if rest and rest[0] == "versioned":
            s3.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
            )
        print(json.dumps({"created": bucket}))
    elif cmd == "list":
        print(json.dumps(list_keys(s3, bucket, rest[0])))
    elif cmd == "list-versions":
        out = []
        for page in s3.get_paginator("list_object_versions").paginate(
            Bucket=bucket, Prefix=rest[0]
        ):
            for v in page.get("Versions", []):
                out.append({"key": v["Key"], "version": v["VersionId"], "latest": v["IsLatest"], "marker": False})
            for m in page.get("DeleteMarkers", []):
                out.append({"key": m["Key"], "version": m["VersionId"], "latest": m["IsLatest"], "marker": True})
        print(json.dumps(out))
    elif cmd == "delete":
        for key in rest:
            s3.delete_object(Bucket=bucket, Key=key)
        print(json.dumps({"deleted": len(rest)}))
    elif cmd in ("delete-prefix", "delete-matching"):
        keys = list_keys(s3, bucket, rest[0])
        if cmd == "delete-matching":
            keys = [k for k in keys if rest[1] in k]
        for i in range(0, len(keys), 1000):
            s3.delete_objects(
                Bucket=bucket,
                Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]]},
            )
        print(json.dumps({"deleted": len(keys)}))
    else:
        sys.exit(f"unknown command {cmd}")


def list_keys(s3, bucket, prefix):
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys


if __name__ == "__main__":
    main()
