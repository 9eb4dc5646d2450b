// `npm run lint:k8s`: every document in deploy/k8s checked against the Kubernetes OpenAPI schema
// of its apiVersion and kind (kubernetes-models). An unknown kind, a YAML error, a schema error or
// a kustomization.yaml that leaves a manifest out exits 1. No cluster is involved: admission
// webhooks, quotas and references to other objects are not checked, nor are unknown fields (the
// schema allows them, as the API server does without strict field validation).
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as models from 'kubernetes-models';
import { parse, parseAllDocuments } from 'yaml';

const MANIFESTS = resolve(import.meta.dirname, '../../../deploy/k8s');
const KUSTOMIZATION = 'kustomization.yaml';

interface ModelClass {
  apiVersion: string;
  kind: string;
  new (data: object): { validate(): void };
}

function isModelClass(value: unknown): value is ModelClass {
  return (
    typeof value === 'function' &&
    typeof (value as Partial<ModelClass>).apiVersion === 'string' &&
    typeof (value as Partial<ModelClass>).kind === 'string'
  );
}

/** Every kind kubernetes-models knows, keyed by `apiVersion kind`. */
function collectModels(namespace: object, into = new Map<string, ModelClass>()) {
  for (const value of Object.values(namespace)) {
    if (isModelClass(value)) into.set(`${value.apiVersion} ${value.kind}`, value);
    else if (value && typeof value === 'object') collectModels(value, into);
  }
  return into;
}

function checkManifest(file: string, known: Map<string, ModelClass>): string[] {
  const documents = parseAllDocuments(readFileSync(resolve(MANIFESTS, file), 'utf8'));
  const problems: string[] = [];
  for (const [index, document] of documents.entries()) {
    const where = `${file} document ${index + 1}`;
    if (document.errors.length > 0) {
      problems.push(...document.errors.map((error) => `${where}: ${error.message}`));
      continue;
    }
    const object: unknown = document.toJS();
    if (object === null) continue;
    const { apiVersion, kind, metadata } = object as {
      apiVersion?: string;
      kind?: string;
      metadata?: { name?: string };
    };
    const Model = known.get(`${apiVersion} ${kind}`);
    if (!Model) {
      problems.push(`${where}: unknown apiVersion/kind "${apiVersion}" "${kind}"`);
      continue;
    }
    try {
      new Model(object as object).validate();
      process.stdout.write(`ok  ${file}: ${apiVersion} ${kind} ${metadata?.name ?? '(no name)'}\n`);
    } catch (err) {
      problems.push(`${where} (${kind}): ${(err as Error).message}`);
    }
  }
  return problems;
}

/** kustomization.yaml must list exactly the manifests beside it, so none is left unapplied. */
function checkKustomization(manifests: string[]): string[] {
  const { resources } = parse(readFileSync(resolve(MANIFESTS, KUSTOMIZATION), 'utf8')) as {
    resources?: string[];
  };
  const listed = new Set(resources ?? []);
  return [
    ...manifests
      .filter((file) => !listed.has(file))
      .map((file) => `${KUSTOMIZATION}: resources leaves out ${file}`),
    ...[...listed]
      .filter((file) => !manifests.includes(file))
      .map((file) => `${KUSTOMIZATION}: resources names ${file}, which is not in deploy/k8s`),
  ];
}

function main(): void {
  const known = collectModels(models);
  const files = readdirSync(MANIFESTS).filter((file) => /\.ya?ml$/.test(file));
  const manifests = files.filter((file) => file !== KUSTOMIZATION).sort();
  const problems = [
    ...manifests.flatMap((file) => checkManifest(file, known)),
    ...(files.includes(KUSTOMIZATION) ? checkKustomization(manifests) : []),
  ];
  for (const problem of problems) process.stderr.write(`${problem}\n`);
  if (problems.length > 0) process.exit(1);
  process.stdout.write(
    `deploy/k8s: ${manifests.length} files valid against the Kubernetes schema\n`,
  );
}

main();
