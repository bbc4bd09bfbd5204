import { GROUPS, VARIABLES, type Variable } from "./variables.js";

/**
 * `.env.example` and the README's configuration table, generated from the table of variables so that they
 * cannot say something the code does not do. `npm run config:docs` writes them; test/config-docs.test.ts
 * fails when the files in the repository differ from what this generates.
 */

const README_START = "<!-- config:start: generated from src/config/variables.ts by `npm run config:docs`; edit there -->";
const README_END = "<!-- config:end -->";
const COMMENT_WIDTH = 118;

/** The variables in the order of their groups. */
function byGroup(): { title: string; variables: Variable<unknown>[] }[] {
  const variables: Variable<unknown>[] = Object.values(VARIABLES);
  return Object.entries(GROUPS).map(([group, title]) => ({ title, variables: variables.filter((v) => v.group === group) }));
}

export function renderEnvExample(): string {
  const lines = [
    "# vericode configuration. Every variable is optional in development; NODE_ENV=production requires",
    "# JWT_SECRET and OTP_SECRET and refuses the console SMS provider. Copy to .env and edit.",
    "# Generated from src/config/variables.ts by `npm run config:docs`: edit there, not here.",
  ];
  for (const { title, variables } of byGroup()) {
    lines.push("", `# --- ${title} ---`);
    for (const variable of variables) lines.push(...commentLines(variable.description.replaceAll("`", "")), assignment(variable));
  }
  return `${lines.join("\n")}\n`;
}

/** `NAME=default` when it has one; otherwise commented out, with an example unless it is a secret. */
function assignment(variable: Variable<unknown>): string {
  if (variable.default !== undefined) return `${variable.name}=${variable.default}`;
  return `# ${variable.name}=${variable.secret === true ? "" : (variable.example ?? "")}`;
}

function commentLines(text: string): string[] {
  const lines: string[] = [];
  let line = "#";
  for (const word of text.split(" ")) {
    if (line !== "#" && line.length + 1 + word.length > COMMENT_WIDTH) {
      lines.push(line);
      line = "#";
    }
    line += ` ${word}`;
  }
  return [...lines, line];
}

export function renderReadmeTable(): string {
  const cell = (markdown: string): string => markdown.replaceAll("|", "\\|");
  const rows = byGroup().flatMap(({ variables }) =>
    variables.map((v) => {
      const shown = v.shownDefault ?? (v.default === undefined ? "unset" : `\`${v.default}\``);
      return `| \`${v.name}\` | ${cell(shown)} | ${cell(v.description)} |`;
    }),
  );
  return [README_START, "", "| variable | default | meaning |", "| --- | --- | --- |", ...rows, "", README_END].join("\n");
}

/** The README with its configuration table regenerated between the two markers. */
export function withReadmeTable(readme: string): string {
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END, start);
  if (start === -1 || end === -1) {
    throw new Error(`README.md has lost the markers around its configuration table: ${README_START} … ${README_END}`);
  }
  return readme.slice(0, start) + renderReadmeTable() + readme.slice(end + README_END.length);
}
