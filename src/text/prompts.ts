import { DEFAULT_TEMPLATE, TEMPLATE_SETS } from './templates.js';
import type { TemplateSetName } from './templates.js';

/**
 * Class labels → prompts for zero-shot classification and for training captions.
 * A template holds `{label}` or OpenAI's `{}` where the label goes.
 */

export { BLOG_TEMPLATE, DEFAULT_TEMPLATE, OPENAI_IMAGENET_TEMPLATES, TEMPLATE_SETS } from './templates.js';
export type { TemplateSetName } from './templates.js';

const PLACEHOLDERS = ['{label}', '{}'] as const;

export function isTemplateSetName(name: string): name is TemplateSetName {
  return Object.hasOwn(TEMPLATE_SETS, name);
}

/** A named template set: 'default', 'blog' or 'openai-imagenet' (80 templates). */
export function templates(name: TemplateSetName): readonly string[] {
  if (!isTemplateSetName(name)) {
    throw new Error(`Unknown template set ${JSON.stringify(name)}; known: ${Object.keys(TEMPLATE_SETS).join(', ')}`);
  }
  return TEMPLATE_SETS[name];
}

/** Folder and ImageNet-style names use `_` for spaces (`golden_retriever`); prompts need words. */
export function labelText(label: string): string {
  return label.replaceAll('_', ' ');
}

/** One prompt: the template with every placeholder replaced by the label (`_` → space). */
export function labelToPrompt(label: string, template: string = DEFAULT_TEMPLATE): string {
  const placeholder = PLACEHOLDERS.find((p) => template.includes(p));
  if (placeholder === undefined) {
    throw new Error(`Template ${JSON.stringify(template)} has no {label} (or {}) placeholder for the label`);
  }
  return template.replaceAll(placeholder, labelText(label));
}

/**
 * Every label's prompts, one row per label and one column per template, so an ensemble can
 * average a label's text embeddings row by row. Accepts a set name or explicit templates.
 */
export function promptsFor(
  labels: readonly string[],
  templatesOrName: TemplateSetName | string | readonly string[] = 'default',
): string[][] {
  const list = resolveTemplates(templatesOrName);
  return labels.map((label) => list.map((template) => labelToPrompt(label, template)));
}

/** A set name, one template string, or a list of templates. */
export function resolveTemplates(templatesOrName: TemplateSetName | string | readonly string[]): readonly string[] {
  if (typeof templatesOrName !== 'string') {
    if (templatesOrName.length === 0) throw new Error('promptsFor needs at least one template');
    return templatesOrName;
  }
  if (isTemplateSetName(templatesOrName)) return TEMPLATE_SETS[templatesOrName];
  if (PLACEHOLDERS.some((p) => templatesOrName.includes(p))) return [templatesOrName];
  throw new Error(
    `${JSON.stringify(templatesOrName)} is neither a template set (${Object.keys(TEMPLATE_SETS).join(', ')}) ` +
      'nor a template with a {label} placeholder',
  );
}
