#include "plugins/ElfSymbols.hpp"

#include <elf.h>

#include <bit>
#include <cstring>
#include <fstream>

namespace connector::plugins {
namespace {

// Reads `count` items of T at `offset`, refusing anything that would run past the file's end.
template <typename T>
bool read_at(std::ifstream &in, uint64_t file_size, uint64_t offset, std::vector<T> &out,
             uint64_t count) {
  if (offset > file_size || count > (file_size - offset) / sizeof(T)) return false;
  out.resize(count);
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(reinterpret_cast<char *>(out.data()), static_cast<std::streamsize>(count * sizeof(T)));
  return static_cast<bool>(in);
}

bool is_shared_library(const Elf64_Ehdr &header) {
  return std::memcmp(header.e_ident, ELFMAG, SELFMAG) == 0 &&
         header.e_ident[EI_CLASS] == ELFCLASS64 &&
         header.e_ident[EI_DATA] ==
             (std::endian::native == std::endian::little ? ELFDATA2LSB : ELFDATA2MSB) &&
         header.e_type == ET_DYN && header.e_shentsize == sizeof(Elf64_Shdr);
}

bool is_exported(const Elf64_Sym &symbol) {
  const unsigned bind = ELF64_ST_BIND(symbol.st_info);
  return symbol.st_shndx != SHN_UNDEF && (bind == STB_GLOBAL || bind == STB_WEAK) &&
         ELF64_ST_VISIBILITY(symbol.st_other) == STV_DEFAULT;
}

}  // namespace

std::optional<std::vector<std::string>> exported_symbols(const std::filesystem::path &path) {
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  std::ifstream in(path, std::ios::binary);
  if (ec || !in) return std::nullopt;

  std::vector<Elf64_Ehdr> header;
  if (!read_at(in, file_size, 0, header, 1) || !is_shared_library(header[0])) return std::nullopt;
  std::vector<Elf64_Shdr> sections;
  if (!read_at(in, file_size, header[0].e_shoff, sections, header[0].e_shnum)) return std::nullopt;

  // The dynamic symbol table names its string table through sh_link.
  std::vector<std::string> names;
  for (const auto &section : sections) {
    if (section.sh_type != SHT_DYNSYM || section.sh_link >= sections.size()) continue;
    const Elf64_Shdr &strings = sections[section.sh_link];
    std::vector<Elf64_Sym> symbols;
    std::vector<char> text;
    if (!read_at(in, file_size, section.sh_offset, symbols, section.sh_size / sizeof(Elf64_Sym)) ||
        !read_at(in, file_size, strings.sh_offset, text, strings.sh_size)) {
      return std::nullopt;
    }
    for (const auto &symbol : symbols) {
      if (!is_exported(symbol) || symbol.st_name >= text.size()) continue;
      const char *name = text.data() + symbol.st_name;
      names.emplace_back(name, strnlen(name, text.size() - symbol.st_name));
    }
  }
  return names;
}

}  // namespace connector::plugins
