/**
 * The documented-API check: every export of src/index.ts has a TSDoc comment with a summary and an
 * `@example`, so does every public member of an exported class, and the README's API reference
 * names every export.
 */
import { readFileSync } from "node:fs";
import path from "node:path";

import ts from "typescript";
import { describe, expect, it } from "vitest";

import * as api from "../src/index.js";

const packageDir = path.resolve(import.meta.dirname, "..");
const entry = path.join(packageDir, "src/index.ts");

/** The compiled program of the library, as `tsconfig.build.json` describes it. */
function program(): ts.Program {
  const configPath = path.join(packageDir, "tsconfig.build.json");
  const read = ts.readConfigFile(configPath, (file) => ts.sys.readFile(file));
  if (read.error) throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, "\n"));
  const config: unknown = read.config;
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, packageDir, undefined, configPath);
  return ts.createProgram({ rootNames: [entry], options: parsed.options });
}

interface Documented {
  readonly name: string;
  readonly where: string;
  readonly summary: string;
  readonly examples: number;
}

/** The doc comment of one declaration: its summary text and how many `@example` tags it has. */
function docs(name: string, declaration: ts.Declaration): Documented {
  const source = declaration.getSourceFile();
  const { line } = source.getLineAndCharacterOfPosition(declaration.getStart());
  const where = `${path.relative(packageDir, source.fileName)}:${String(line + 1)}`;
  const comments = ts.getJSDocCommentsAndTags(declaration).filter((node): node is ts.JSDoc => ts.isJSDoc(node));
  const summary = comments
    .map((comment) => ts.getTextOfJSDocComment(comment.comment) ?? "")
    .join("\n")
    .trim();
  const examples = ts.getJSDocTags(declaration).filter((tag) => tag.tagName.text === "example").length;
  return { name, where, summary, examples };
}

/** Every declaration behind every export of the entry point (a name can be a value and a type). */
function exportedDeclarations(): [string, ts.Declaration][] {
  const library = program();
  const checker = library.getTypeChecker();
  const file = library.getSourceFile(entry);
  const module = file && checker.getSymbolAtLocation(file);
  if (module === undefined) throw new Error(`cannot load ${entry}`);
  const declarations: [string, ts.Declaration][] = [];
  for (const exported of checker.getExportsOfModule(module)) {
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    for (const declaration of symbol.declarations ?? []) declarations.push([exported.name, declaration]);
  }
  return declarations;
}

describe("the documented API", () => {
  const declarations = exportedDeclarations();

  it("finds every runtime export of src/index.ts", () => {
    const names = new Set(declarations.map(([name]) => name));
    for (const name of Object.keys(api)) expect(names, name).toContain(name);
    expect(names.size).toBeGreaterThanOrEqual(Object.keys(api).length + 10);
  });

  it.each(declarations.map(([name, declaration]) => docs(name, declaration)))(
    "$name ($where) has a summary and an @example",
    ({ summary, examples }) => {
      expect(summary.length).toBeGreaterThan(20);
      expect(examples).toBeGreaterThanOrEqual(1);
    },
  );

  const members = declarations
    .filter((entry): entry is [string, ts.ClassDeclaration] => ts.isClassDeclaration(entry[1]))
    .flatMap(([className, declaration]) =>
      declaration.members
        .filter((member) => {
          const modifiers = ts.getCombinedModifierFlags(member);
          return (modifiers & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) === 0;
        })
        .map((member) => docs(`${className}.${member.name?.getText() ?? "constructor"}`, member)),
    );

  it("covers the public members of exported classes", () => {
    expect(members.map((member) => member.name)).toEqual(
      expect.arrayContaining(["AnysyncError.code", "AnysyncError.from", "AnysyncError.constructor"]),
    );
  });

  it.each(members)("$name ($where) has a summary and an @example", ({ summary, examples }) => {
    expect(summary.length).toBeGreaterThan(10);
    expect(examples).toBeGreaterThanOrEqual(1);
  });
});

describe("README.md", () => {
  const readme = readFileSync(path.join(packageDir, "README.md"), "utf8");
  const declarations = exportedDeclarations();

  it.each([...new Set(declarations.map(([name]) => name))])("documents %s in the API reference", (name) => {
    const reference = readme.slice(readme.indexOf("## API reference"));
    expect(reference).toMatch(new RegExp(`^#{3,4} .*\\b${name}\\b`, "m"));
  });

  it.each([...api.ERROR_CODES])("has %s in the error code table", (code) => {
    expect(readme).toMatch(new RegExp(`^\\| \`${code}\` \\|`, "m"));
  });
});
