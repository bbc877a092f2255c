// Expected<T>: a value or a Failure, for operations whose failure is part of normal life
// (bad input, a refused plugin, a missing record). Exceptions stay for the truly exceptional.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace connector {

// A failure with a stable machine-readable code ("invalid_config", "not_found", …) and a message
// written for the person who has to act on it.
struct Failure {
  std::string code;
  std::string message;
};

template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : state_(std::move(value)) {}
  Expected(Failure failure) : state_(std::move(failure)) {}

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T &value() & { return std::get<0>(state_); }
  const T &value() const & { return std::get<0>(state_); }
  T &&value() && { return std::get<0>(std::move(state_)); }
  T &operator*() & { return value(); }
  const T &operator*() const & { return value(); }
  T *operator->() { return &value(); }
  const T *operator->() const { return &value(); }

  const Failure &failure() const { return std::get<1>(state_); }

 private:
  std::variant<T, Failure> state_;
};

struct Ok {};
using Outcome = Expected<Ok>;

inline Failure failure(std::string code, std::string message) {
  return Failure{std::move(code), std::move(message)};
}

}  // namespace connector
