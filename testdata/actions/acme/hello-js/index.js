// Greets, and shows what the runner gave it: inputs, the action's paths,
// the environment files and the runtime variables.
const fs = require("fs");
const path = require("path");
const who = process.env["INPUT_WHO-TO-GREET"];
console.log(`Hello ${who}!`);
console.log(`action path has index.js: ${fs.existsSync(path.join(process.env.GITHUB_ACTION_PATH, "index.js"))}`);
console.log(`repository ${process.env.GITHUB_ACTION_REPOSITORY} ref ${process.env.GITHUB_ACTION_REF}`);
console.log(`runner ${process.env.RUNNER_OS} tool cache ${process.env.RUNNER_TOOL_CACHE}`);
console.log(`token set: ${(process.env.ACTIONS_RUNTIME_TOKEN || "").length > 0}`);
fs.appendFileSync(process.env.GITHUB_OUTPUT, `greeting=Hello ${who}\n`);
fs.appendFileSync(process.env.GITHUB_STATE, `greeted=${who}\n`);
fs.appendFileSync(process.env.GITHUB_ENV, `GREETED=${who}\n`);
