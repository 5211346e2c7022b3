// A .tar.gz of small files, written in the browser (ustar headers by hand, gzip by CompressionStream).
// Collect mode uses it to hand the letter pipeline its raw layout: images/<letter>/<NN>.png.

const encoder = new TextEncoder();

function field(header, offset, length, text) {
  const bytes = encoder.encode(text);
  if (bytes.length > length) throw new Error(`tar: "${text}" does not fit in ${length} bytes`);
  header.set(bytes, offset);
}

function octal(header, offset, length, value) {
  field(header, offset, length, value.toString(8).padStart(length - 1, "0") + "\0");
}

/** One 512-byte ustar header for a regular file (type "0") or a directory (type "5"). */
function header(name, size, type, mtime) {
  const h = new Uint8Array(512);
  field(h, 0, 100, name);
  octal(h, 100, 8, type === "5" ? 0o755 : 0o644);
  octal(h, 108, 8, 0); // uid
  octal(h, 116, 8, 0); // gid
  octal(h, 124, 12, size);
  octal(h, 136, 12, mtime);
  h.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  field(h, 156, 1, type);
  field(h, 257, 6, "ustar\0");
  field(h, 263, 2, "00");
  let sum = 0;
  for (const b of h) sum += b;
  field(h, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

/** files: [{name, bytes: Uint8Array}] -> Uint8Array of an uncompressed tar (folders added as needed). */
export function tar(files, mtime = Math.floor(Date.now() / 1000)) {
  const parts = [];
  const folders = new Set();
  for (const { name, bytes } of files) {
    const segments = name.split("/");
    for (let i = 1; i < segments.length; i++) {
      const folder = segments.slice(0, i).join("/") + "/";
      if (!folders.has(folder)) {
        folders.add(folder);
        parts.push(header(folder, 0, "5", mtime));
      }
    }
    parts.push(header(name, bytes.length, "0", mtime), bytes);
    const pad = (512 - (bytes.length % 512)) % 512;
    if (pad) parts.push(new Uint8Array(pad));
  }
  parts.push(new Uint8Array(1024)); // two zero blocks end the archive
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** gzip bytes with the browser's own CompressionStream. */
export async function gzip(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
