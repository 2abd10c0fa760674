/**
 * The named types the public API refers to, found with the TypeScript
 * compiler from the package entry (index.ts): every exported type, and the
 * parameter and return types of every exported function; then, transitively,
 * every type of this package that those name (properties, extends, unions,
 * type arguments). Each must itself be exported from index.ts, or a caller
 * cannot name what it passes or gets.
 */
import { join } from 'node:path';
import ts from 'typescript';

export interface PublicTypes {
  /** Names exported from index.ts. */
  readonly exported: ReadonlySet<string>;
  /** Each type the options use: its name, and where it was reached from. */
  readonly used: ReadonlyMap<string, string>;
}

const ROOT = join(import.meta.dirname, '..', '..');

export function publicOptionTypes(): PublicTypes {
  const entry = join(ROOT, 'index.ts');
  const config = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined });
  const program = ts.createProgram([entry], { ...(config?.options ?? {}), noEmit: true });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(entry)!;
  const resolve = (s: ts.Symbol): ts.Symbol => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
  const exports = checker.getExportsOfModule(checker.getSymbolAtLocation(source)!);
  const ours = (d: ts.Declaration) => {
    const file = d.getSourceFile().fileName;
    return file.startsWith(ROOT) && !file.includes('/node_modules/');
  };

  const used = new Map<string, string>();
  const seen = new Set<ts.Symbol>();
  const visit = (symbol: ts.Symbol, from: string): void => {
    const s = resolve(symbol);
    if (seen.has(s)) return;
    const declarations = (s.declarations ?? []).filter(
      (d) => ts.isInterfaceDeclaration(d) || ts.isTypeAliasDeclaration(d) || ts.isEnumDeclaration(d) || ts.isClassDeclaration(d),
    );
    if (declarations.length === 0 || !declarations.every(ours)) return;
    seen.add(s);
    used.set(s.name, from);
    // Classes (the errors) are values with behaviour: what they are built from is not an option.
    if (declarations.some(ts.isClassDeclaration)) return;
    for (const d of declarations) walk(d, s.name);
  };
  const walk = (node: ts.Node, from: string): void => {
    if (ts.isTypeReferenceNode(node)) {
      const symbol = checker.getSymbolAtLocation(node.typeName);
      if (symbol) visit(symbol, from);
    } else if (ts.isExpressionWithTypeArguments(node)) {
      const symbol = checker.getSymbolAtLocation(node.expression);
      if (symbol) visit(symbol, from);
    } else if (ts.isTypeQueryNode(node)) {
      return; // `typeof X`: the type of a value, not a name a caller needs
    }
    ts.forEachChild(node, (child) => walk(child, from));
  };

  for (const e of exports) {
    const s = resolve(e);
    const name = e.name;
    for (const d of s.declarations ?? []) {
      if (ts.isFunctionDeclaration(d)) {
        for (const p of d.parameters) if (p.type) walk(p.type, `${name}()`);
        if (d.type) walk(d.type, `${name}()`);
      }
      if (ts.isInterfaceDeclaration(d) || ts.isTypeAliasDeclaration(d)) visit(s, name);
    }
  }
  return { exported: new Set(exports.map((e) => resolve(e).name)), used };
}
