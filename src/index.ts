// The programmatic API of clip-native.
export { doctor, type DoctorReport } from './doctor.js';
export { cudaMemory, runtimeInfo, setThreads, type CudaMemory, type TensorData, type RuntimeInfo, type NativeTrainerOptions } from './native.js';
export { cacheDir } from './util/cache.js';
export { version } from './version.js';

// Model
export { ARCHITECTURES, MODEL_NAMES, architecture, canonicalModelName, isResNet, type ClipConfig } from './model/config.js';
export {
  ClipModel,
  createModel,
  loadModel,
  type CreateModelOptions,
  type LoadModelOptions,
  type LoadReport,
  type Precision,
  type TokenData,
  type WeightFormat,
} from './model/model.js';
export { pretrainedFile, resolvePretrained } from './model/pretrained.js';
export { resolvePretrainedModel, setDownloadProgress, type ResolvedModel, type ResolveNameOptions } from './model/resolve-name.js';
export { listOpenClipNames } from './model/open-clip-registry.js';
export { hubCacheDir } from './model/hf-hub.js';
export { exportModel, hfConfig, hfPreprocessorConfig, openClipConfig, type ExportOptions, type ExportResult, type ExportTarget } from './model/export.js';
export type { DownloadProgress, ProgressCallback } from './util/download.js';

// Text
export {
  loadTokenizer,
  tokenizerFromFile,
  resolveVocabularyPath,
  ClipTokenizer,
  START_OF_TEXT_ID,
  END_OF_TEXT_ID,
  VOCAB_FILE_NAME,
  type LoadTokenizerOptions,
  type TokenizeOptions,
  type TokenizerOptions,
  type TokenBatch,
} from './text/tokenizer.js';
export { fixText } from './text/fix-text.js';
export {
  labelToPrompt,
  promptsFor,
  templates,
  DEFAULT_TEMPLATE,
  BLOG_TEMPLATE,
  OPENAI_IMAGENET_TEMPLATES,
  type TemplateSetName,
} from './text/prompts.js';

// Images and data
export { preprocessImage, preprocessImageUint8, modelPreprocessing, RESAMPLE_MODES, type PreprocessOptions, type ImageTensor, type ResampleMode } from './data/preprocess.js';
export { cropGeometry, type CropGeometry, type ResizeMode } from './data/clip-geometry.js';
export { normalize, CLIP_MEAN, CLIP_STD } from './data/normalize.js';
export { ImageDecodeError } from './data/image-problems.js';
export { loadDataset, detectDatasetFormat, type LoadDatasetOptions } from './data/load-dataset.js';
export { DatasetError, type Dataset, type Sample, type DatasetProblem } from './data/dataset.js';
export { createLoader, type Loader, type LoaderOptions, type Batch, type LoaderStats } from './data/loader.js';
export { exportFashionMnist, FASHION_MNIST_CLASSES } from './data/fashion-mnist.js';

// Training
export { train, DivergedError, type TrainOptions, type TrainResult, type StepLog, type EpochLog } from './train/loop.js';
export { createTrainer, Trainer, DEFAULT_TRAINER_OPTIONS, type TrainerOptions, type StepResult } from './train/trainer.js';
export { learningRate, type Schedule } from './train/schedule.js';
export { DEFAULT_CONFIG, resolveConfig, readConfigFile, ConfigError, type TrainConfig } from './train/config.js';

// Data parallel
export { launchFromEnv, ProcessGroup, type LaunchEnv, type GroupOptions } from './distributed/group.js';
export { launchLocal, type LaunchLocalOptions } from './distributed/launch.js';
export { shardOrder, batchesPerEpoch, samplesLeftOut } from './distributed/shard.js';

// Evaluation and tools
export { evaluate, evaluateModel, type EvaluateOptions, type EvaluateModelOptions, type EvaluateResult } from './eval/zero-shot.js';
export { evaluateRetrievalModel, isRetrieval, type RetrievalEvaluation, type RetrievalMetrics, type RankMetrics } from './eval/retrieval.js';
export { zeroShotClassifier, type Templates } from './eval/classifier.js';
export { classify, type ClassifyOptions, type ImagePrediction, type LabelScore } from './eval/classify.js';
export { embedImages, embedTexts, type ImageEmbeddings } from './eval/embed.js';
export { writeEmbeddings } from './eval/embedding-files.js';
export { interpolateWeights } from './eval/interpolate.js';
export { renderReport, writeReport } from './report/html.js';
