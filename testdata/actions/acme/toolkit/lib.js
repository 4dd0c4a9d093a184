// A client of this server's artifact and cache services in Node's standard
// library alone, speaking exactly what @actions/artifact v2 and
// @actions/cache v4 speak: Twirp JSON to ACTIONS_RESULTS_URL with the
// runtime token, and the signed blob URLs in Azure's block-blob dialect.
// Archives are zip files (stored), as upload-artifact's are zips.
"use strict";
const fs = require("fs");
const path = require("path");
const http = require("http");
const https = require("https");
const zlib = require("zlib");
const crypto = require("crypto");

function input(name, required) {
  const v = (process.env["INPUT_" + name.replace(/ /g, "_").toUpperCase()] || "").trim();
  if (required && !v) throw new Error(`Input required and not supplied: ${name}`);
  return v;
}

// As @actions/core's issueFileCommand: the runner must have made the file.
function appendFile(env, name, value) {
  const file = process.env[env];
  if (!file) throw new Error(`Unable to find environment variable for file command ${env}`);
  if (!fs.existsSync(file)) throw new Error(`Missing file at path: ${file}`);
  const d = "ghadelimiter_" + crypto.randomUUID();
  fs.appendFileSync(file, `${name}<<${d}\n${value}\n${d}\n`);
}
const setOutput = (n, v) => appendFile("GITHUB_OUTPUT", n, v);
const saveState = (n, v) => appendFile("GITHUB_STATE", n, v);

function request(method, url, headers, body) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === "https:" ? https : http;
    const req = mod.request(u, { method, headers: { ...headers, "Content-Length": body ? body.length : 0 } }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    if (body) req.write(body);
    req.end();
  });
}

// The run and job ids, from the token's scp claim as the toolkit reads them.
function backendIDs() {
  const tok = process.env.ACTIONS_RUNTIME_TOKEN || "";
  const claims = JSON.parse(Buffer.from(tok.split(".")[1] || "", "base64url").toString());
  for (const s of String(claims.scp || "").split(" ")) {
    const p = s.split(":");
    if (p[0] === "Actions.Results" && p.length === 3) {
      return { workflow_run_backend_id: p[1], workflow_job_run_backend_id: p[2] };
    }
  }
  throw new Error("the runtime token has no Actions.Results scope");
}

async function twirp(service, method, body) {
  const url = new URL(`/twirp/github.actions.results.api.v1.${service}/${method}`, process.env.ACTIONS_RESULTS_URL).href;
  const res = await request("POST", url, {
    "Content-Type": "application/json",
    Authorization: `Bearer ${process.env.ACTIONS_RUNTIME_TOKEN}`,
  }, Buffer.from(JSON.stringify(body)));
  const text = res.body.toString();
  if (res.status !== 200) throw new Error(`${service}/${method}: ${res.status}: ${text}`);
  return JSON.parse(text);
}

// uploadStream's way: one block per 8 MiB, then the block list.
async function putBlocks(url, data) {
  const ids = [];
  for (let off = 0, i = 0; off < data.length || i === 0; off += 8 << 20, i++) {
    const id = Buffer.from(crypto.randomUUID()).toString("base64");
    const res = await request("PUT", `${url}&comp=block&blockid=${encodeURIComponent(id)}`, {}, data.subarray(off, off + (8 << 20)));
    if (res.status !== 201) throw new Error(`PUT block: ${res.status}: ${res.body}`);
    ids.push(id);
  }
  const xml = `<?xml version="1.0" encoding="utf-8"?><BlockList>${ids.map((id) => `<Latest>${id}</Latest>`).join("")}</BlockList>`;
  const res = await request("PUT", `${url}&comp=blocklist`, { "Content-Type": "application/xml" }, Buffer.from(xml));
  if (res.status !== 201) throw new Error(`PUT blocklist: ${res.status}: ${res.body}`);
}

// uploadFile's way for small files: one PUT of the whole blob.
async function putBlob(url, data) {
  const res = await request("PUT", url, { "x-ms-blob-type": "BlockBlob" }, data);
  if (res.status !== 201) throw new Error(`PUT blob: ${res.status}: ${res.body}`);
}

async function getBlob(url) {
  const res = await request("GET", url, {});
  if (res.status !== 200) throw new Error(`GET blob: ${res.status}: ${res.body}`);
  return res.body;
}

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// The files under root (a file or a directory), as [name, data] with
// names relative to base.
function collect(root, base) {
  const st = fs.statSync(root);
  if (!st.isDirectory()) return [[path.relative(base, root), fs.readFileSync(root)]];
  return fs.readdirSync(root).sort().flatMap((n) => collect(path.join(root, n), base));
}

function zip(files) {
  const locals = [], centrals = [];
  let off = 0;
  for (const [name, data] of files) {
    const n = Buffer.from(name), crc = crc32(data);
    const h = Buffer.alloc(30);
    h.writeUInt32LE(0x04034b50, 0); h.writeUInt16LE(20, 4); h.writeUInt32LE(crc, 14);
    h.writeUInt32LE(data.length, 18); h.writeUInt32LE(data.length, 22); h.writeUInt16LE(n.length, 26);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0); c.writeUInt16LE(20, 4); c.writeUInt16LE(20, 6); c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(data.length, 20); c.writeUInt32LE(data.length, 24); c.writeUInt16LE(n.length, 28); c.writeUInt32LE(off, 42);
    locals.push(h, n, data);
    centrals.push(c, n);
    off += 30 + n.length + data.length;
  }
  const cd = Buffer.concat(centrals), end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(files.length, 8); end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(cd.length, 12); end.writeUInt32LE(off, 16);
  return Buffer.concat([...locals, cd, end]);
}

// unzip reads a zip by its central directory: stored and deflated entries.
function unzip(buf, dest) {
  const end = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (end < 0) throw new Error("not a zip file");
  let p = buf.readUInt32LE(end + 16);
  const names = [];
  for (let i = 0; i < buf.readUInt16LE(end + 10); i++) {
    const method = buf.readUInt16LE(p + 10), csize = buf.readUInt32LE(p + 20), size = buf.readUInt32LE(p + 24);
    const nlen = buf.readUInt16LE(p + 28), elen = buf.readUInt16LE(p + 30), clen = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.subarray(p + 46, p + 46 + nlen).toString();
    p += 46 + nlen + elen + clen;
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const raw = buf.subarray(start, start + csize);
    const data = method === 8 ? zlib.inflateRawSync(raw) : raw;
    if (data.length !== size) throw new Error(`${name}: ${data.length} bytes, want ${size}`);
    const out = path.resolve(dest, name);
    if (!out.startsWith(path.resolve(dest) + path.sep)) throw new Error(`${name} is outside ${dest}`);
    if (name.endsWith("/")) continue;
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, data);
    names.push(name);
  }
  return names;
}

function workspacePath(p) {
  return path.resolve(process.env.GITHUB_WORKSPACE || process.cwd(), p);
}

function run(fn) {
  fn().catch((err) => {
    console.log(`::error::${err.message}`);
    process.exitCode = 1;
  });
}

module.exports = { input, setOutput, saveState, twirp, backendIDs, putBlocks, putBlob, getBlob, zip, unzip, collect, workspacePath, run };
