// Turning any C++ failure into one readable message. The N-API layer turns that message into a JS
// Error; nothing below it may let an exception escape into Node (which would abort the process).
#pragma once
#include <c10/util/Exception.h>

#include <exception>
#include <string>

namespace clip {

/** The message of the exception currently being handled, without LibTorch's C++ backtrace. */
inline std::string current_exception_message() {
  try {
    throw;
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown native error";
  }
}

}  // namespace clip
