// The restricted unpickler for the records of PyTorch zip archives, shared by torch.save files
// (read_torch_pickle) and TorchScript archives (read_torchscript).
#pragma once

#include "pickle_machine.h"

#include <string>

namespace clip::io {

class ZipRecords;

enum class PickleFlavour {
  kTorchSave,    // tensors, storages, OrderedDict and plain containers only
  kTorchScript,  // also `__torch__.*` objects, kept as inert Records, and TorchScript's typed lists
};

// Unpickles `record` of `zip`; tensors' storages are the records under `storage_dir` ("data/",
// "constants/"). Refused input throws std::runtime_error naming the record (not the file).
pickle::Ref unpickle_torch_record(ZipRecords& zip, const std::string& record, const std::string& storage_dir, PickleFlavour flavour);

}  // namespace clip::io
