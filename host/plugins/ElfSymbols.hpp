// The symbols a shared library exports, read from the file without loading it.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace connector::plugins {

// Reads the dynamic symbol table (.dynsym) of a 64-bit ELF shared library and returns the names
// of the symbols it defines with default visibility: exactly what dlsym could find. The table
// survives `strip`, unlike the .symtab that boost::dll::library_info reads (and which it pairs
// with the wrong string table in Boost 1.74). Returns nullopt when the file is not such a library.
std::optional<std::vector<std::string>> exported_symbols(const std::filesystem::path &path);

}  // namespace connector::plugins
