// A libFuzzer target for the native weight readers: each input is written to a file and read with
// clip::io::read_weights, the entry point every format goes through (safetensors, torch.save zip
// and legacy, TorchScript). A refusal is a C++ exception, which is fine; what libFuzzer and
// AddressSanitizer report (a crash, an out-of-bounds read or write, a use after free, a timeout or
// running out of memory) is a finding. Build and run: test/fuzz/build-libfuzzer.sh, docs/fuzzing.md.
//
// Built with -DWEIGHTS_FUZZER_STANDALONE (any C++ compiler, no libFuzzer) it is a plain program that
// runs the target once per file given on the command line: to replay a finding under a debugger, or
// to check that the target compiles and links where clang is missing.
#include "io/weights.h"

#include <ATen/Parallel.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

// One scratch file per process (libFuzzer's -fork / -jobs run several processes).
const std::string& scratch_path() {
  static const std::string path = [] {
    const char* dir = std::getenv("TMPDIR");
    return std::string(dir && *dir ? dir : "/tmp") + "/clip_weights_fuzzer." + std::to_string(::getpid()) + ".bin";
  }();
  return path;
}

// Reads every byte of every tensor that came back, so that a tensor viewing memory it does not own
// (a storage shorter than the view, a freed buffer) is caught by AddressSanitizer here.
uint64_t touch(const clip::io::TensorFile& file) {
  uint64_t sum = 0;
  for (const auto& named : file.tensors) {
    const at::Tensor& t = named.tensor;
    if (!t.defined() || !t.is_contiguous() || t.nbytes() == 0) continue;
    const auto* bytes = static_cast<const unsigned char*>(t.const_data_ptr());
    for (size_t i = 0; i < t.nbytes(); i += 1) sum += bytes[i];
    sum += named.name.size();
  }
  for (const auto& [key, value] : file.metadata) sum += key.size() + value.size();
  return sum;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  at::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = scratch_path();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out) {
      std::perror("weights_fuzzer: cannot write the scratch file");
      std::abort();
    }
  }
  try {
    const clip::io::TensorFile file = clip::io::read_weights(path);
    volatile uint64_t sink = touch(file);
    (void)sink;
  } catch (const std::exception&) {
    // Refused (std::runtime_error, c10::Error): the outcome a malformed file should have.
  }
  return 0;
}

#ifdef WEIGHTS_FUZZER_STANDALONE
int main(int argc, char** argv) {
  LLVMFuzzerInitialize(&argc, &argv);
  int failures = 0;
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "cannot read %s\n", argv[i]);
      ++failures;
      continue;
    }
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string outcome = "read";
    try {
      (void)touch(clip::io::read_weights(argv[i]));
    } catch (const std::exception& e) {
      outcome = std::string("refused: ") + e.what();
      if (const auto nl = outcome.find('\n'); nl != std::string::npos) outcome.resize(nl);
    }
    // The same input through the fuzz entry point (written to the scratch file first).
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    std::printf("%s: %zu bytes, %s\n", argv[i], bytes.size(), outcome.c_str());
  }
  std::remove(scratch_path().c_str());
  return failures ? 1 : 0;
}
#endif
