// sharp in a warm process, as a Node.js Lambda function runs it between invocations: the three
// default renditions of one upload, repeated, and the median CPU time per upload.
//
// Usage: node warm.mjs <photo> <renders>   (run pinned to one core: taskset -c 0)
//
// The pipeline is sharp at its best for this job, not its simplest: the largest rendition is
// made from the upload (sharp shrinks JPEG and WebP on load), the two smaller ones from the
// largest's pixels, as snapglow's resize does. Three independent pipelines from the upload
// decode it three times: measured here about 1.35x slower on a 20 MP JPEG.
import { readFileSync } from "node:fs";
import sharp from "sharp";

// One thread, as the others in the benchmark; no operation cache, as a fresh upload has none.
sharp.concurrency(1);
sharp.cache(false);

const [photo, renders = "10"] = process.argv.slice(2);
const upload = readFileSync(photo);
const jpeg = { quality: 82 };
const inside = { fit: "inside", withoutEnlargement: true };

async function renditions() {
  // rotate(): applies the EXIF orientation, as resize does; metadata is dropped by default.
  const { data, info } = await sharp(upload)
    .rotate()
    .resize(2048, 2048, inside)
    .raw()
    .toBuffer({ resolveWithObject: true });
  const raw = { raw: { width: info.width, height: info.height, channels: info.channels } };
  const outputs = [await sharp(data, raw).jpeg(jpeg).toBuffer()];
  for (const edge of [1024, 320]) {
    outputs.push(await sharp(data, raw).resize(edge, edge, inside).jpeg(jpeg).toBuffer());
  }
  return outputs;
}

const median = (values) => values.sort((a, b) => a - b)[values.length >> 1];

// The first render warms the process (libvips' start-up, code paging in), as an init phase.
await renditions();
const cpu = [];
const wall = [];
for (let i = 0; i < Number(renders); i++) {
  const [before, started] = [process.cpuUsage(), process.hrtime.bigint()];
  await renditions();
  const used = process.cpuUsage(before);
  cpu.push((used.user + used.system) / 1000);
  wall.push(Number(process.hrtime.bigint() - started) / 1e6);
}
console.log(
  JSON.stringify({
    renders: Number(renders),
    median_cpu_ms: median(cpu),
    median_wall_ms: median(wall),
    sharp: sharp.versions.sharp,
    libvips: sharp.versions.vips,
  }),
);
