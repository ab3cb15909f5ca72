import { Option, type Command } from 'commander';

import { exportModel, type ExportTarget } from '../model/export.js';
import { loadModel } from '../model/model.js';

interface ExportFlags {
  model: string;
  to: ExportTarget;
  out: string;
  overwrite?: boolean;
  weights: 'safetensors' | 'pt';
  vocab?: string;
  device: string;
}

export function registerExport(program: Command): void {
  program
    .command('export')
    .description(
      'write a model as a folder that Hugging Face transformers (CLIPModel/CLIPProcessor.from_pretrained; ViT only) ' +
        "or open_clip (create_model_and_transforms('local-dir:DIR')) loads as its own",
    )
    .requiredOption('--model <model>', 'model name (ViT-B/32, RN50, …) or weight file')
    .addOption(new Option('--to <library>', 'hf: transformers CLIPModel folder; open_clip: open_clip folder').choices(['hf', 'open_clip']).makeOptionMandatory())
    .requiredOption('--out <dir>', 'output folder (written atomically; must not exist or be empty)')
    .option('--overwrite', 'replace --out if it is a folder that is not empty')
    .addOption(new Option('--weights <format>', 'open_clip weight file: open_clip_model.safetensors or open_clip_pytorch_model.bin').choices(['safetensors', 'pt']).default('safetensors'))
    .option('--vocab <file>', 'bpe_simple_vocab_16e6.txt.gz for the tokenizer files (default: $CLIP_NATIVE_VOCAB or the cache)')
    .option('--device <device>', 'device to load the model on', 'cpu')
    .action(async (flags: ExportFlags) => {
      if (flags.to === 'hf' && flags.weights === 'pt') throw new Error('--weights pt is for --to open_clip; a Hugging Face folder holds model.safetensors');
      const model = await loadModel(flags.model, { device: flags.device });
      try {
        const result = await exportModel(model, flags.out, {
          to: flags.to,
          overwrite: flags.overwrite,
          weights: flags.to === 'open_clip' ? flags.weights : undefined,
          vocab: flags.vocab,
        });
        process.stdout.write(`wrote ${result.dir} (${result.to}): ${result.files.join(', ')}\n`);
      } finally {
        model.dispose();
      }
    });
}
