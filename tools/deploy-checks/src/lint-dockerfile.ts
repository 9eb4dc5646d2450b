// `npm run lint:docker`: the Dockerfile's syntax (dockerfile-utils, the checker behind VS Code's
// Docker support), then the rules this project's image keeps. Any finding, warnings included,
// exits 1.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DockerfileParser, type Instruction, type JSONInstruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';

const DOCKERFILE = resolve(import.meta.dirname, '../../../Dockerfile');
/** The official image, pinned to a full Node 24 release: `node:24.21.0-bookworm-slim`. */
const BASE_IMAGE = /^node:24\.\d+\.\d+(-[a-z0-9]+)*$/;
const ROOT_USERS = new Set(['root', '0', '0:0', 'root:root']);

function argumentsOf(instruction: Instruction): string[] {
  return instruction.getArguments().map((arg) => arg.getValue());
}

/** The rules for the stage that ships, the last one; each broken rule is one message. */
function checkRuntimeStage(text: string): string[] {
  const dockerfile = DockerfileParser.parse(text);
  const defaults = new Map(
    dockerfile.getInitialARGs().flatMap((arg) => {
      const property = arg.getProperty();
      return property ? [[property.getName(), property.getValue() ?? '']] : [];
    }),
  );
  const froms = dockerfile.getFROMs();
  const runtime = froms.at(-1);
  if (!runtime) return ['no FROM instruction'];
  const problems: string[] = [];
  const image = (runtime.getImage() ?? '').replace(
    /\$\{?(\w+)\}?/g,
    (_, name: string) => defaults.get(name) ?? '',
  );
  if (!BASE_IMAGE.test(image)) {
    problems.push(`the runtime stage is FROM "${image}", not an official node:24.x.y image`);
  }
  const stageStart = runtime.getRange().start.line;
  const stage = dockerfile
    .getInstructions()
    .filter((instruction) => instruction.getRange().start.line > stageStart);
  const last = (keyword: string) =>
    stage.filter((instruction) => instruction.getKeyword() === keyword).at(-1);

  const user = last('USER');
  if (!user || ROOT_USERS.has(argumentsOf(user)[0] ?? '')) {
    problems.push('the runtime stage does not switch to a non-root USER');
  }
  if (
    !stage.some(
      (i) =>
        i.getKeyword() === 'ENV' && /\bNODE_ENV=production\b/.test(i.getArgumentsContent() ?? ''),
    )
  ) {
    problems.push('the runtime stage does not set ENV NODE_ENV=production');
  }
  const exposed = new Set(stage.filter((i) => i.getKeyword() === 'EXPOSE').flatMap(argumentsOf));
  for (const port of ['3000', '9464']) {
    if (!exposed.has(port)) problems.push(`the runtime stage does not EXPOSE ${port}`);
  }
  if (!last('HEALTHCHECK')) problems.push('the runtime stage has no HEALTHCHECK');
  const cmd = last('CMD') as JSONInstruction | undefined;
  if (!cmd || cmd.getJSONStrings().length === 0) {
    problems.push('the runtime stage needs an exec-form CMD ["node", …], so node receives SIGTERM');
  }
  return problems;
}

function main(): void {
  const text = readFileSync(DOCKERFILE, 'utf8');
  const findings = [
    ...validate(text).map(
      (diagnostic) => `Dockerfile:${diagnostic.range.start.line + 1}: ${diagnostic.message}`,
    ),
    ...checkRuntimeStage(text).map((problem) => `Dockerfile: ${problem}`),
  ];
  for (const finding of findings) process.stderr.write(`${finding}\n`);
  if (findings.length > 0) process.exit(1);
  process.stdout.write('Dockerfile: syntax and runtime-stage rules hold\n');
}

main();
