#include "store/internal/content_keys.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/big_endian.h"

namespace ihs::store::internal {
namespace {

const uint8_t* U8(absl::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

std::string WrapAdditionalData(absl::string_view stream, uint32_t version) {
  std::string ad = "ihs-dek-v1";
  PutBigEndian32(&ad, version);
  ad.append(stream.data(), stream.size());
  return ad;
}

absl::Status WriteNewKeyFile(const std::string& path, absl::string_view what) {
  SecretKey key;
  randombytes_buf(key.data(), key.size());
  std::string text =
      absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(key.data()), key.size())) +
      "\n";
  sodium_memzero(key.data(), key.size());
  // Written beside, then linked into place: a crash leaves no half-written key file, and link()
  // never replaces a key that is already there.
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create ", what, " file ", path, ": ", std::strerror(errno)));
  }
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  int saved = errno;
  ::close(fd);
  sodium_memzero(text.data(), text.size());
  if (ok && ::link(tmp.c_str(), path.c_str()) != 0) {
    ok = false;
    saved = errno;
  }
  ::unlink(tmp.c_str());
  if (!ok) {
    return absl::UnavailableError(
        absl::StrCat("cannot write ", what, " file ", path, ": ", std::strerror(saved)));
  }
  std::string dir =
      path.substr(0, path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/'));
  int dir_fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SodiumInit() {
  if (sodium_init() < 0) return absl::InternalError("libsodium failed to initialise");
  return absl::OkStatus();
}

absl::StatusOr<SecretKey> LoadOrCreateKeyFile(const std::string& path, bool create,
                                              absl::string_view what,
                                              absl::string_view if_missing) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT || !create) {
      return absl::FailedPreconditionError(absl::StrCat(what, " file ", path, " is missing: ",
                                                        std::strerror(errno), " (", if_missing,
                                                        ")"));
    }
    absl::Status s = WriteNewKeyFile(path, what);
    if (!s.ok()) return s;
  }
  std::ifstream in(path);
  std::stringstream buf;
  buf << in.rdbuf();
  if (!in) return absl::FailedPreconditionError(absl::StrCat("cannot read ", what, " file ", path));
  std::string text(absl::StripAsciiWhitespace(buf.str()));
  if (text.size() != 64 || text.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, " file ", path, " is malformed: expected 64 hexadecimal characters"));
  }
  std::string raw = absl::HexStringToBytes(text);
  SecretKey key;
  std::memcpy(key.data(), raw.data(), key.size());
  sodium_memzero(raw.data(), raw.size());
  sodium_memzero(text.data(), text.size());
  return key;
}

absl::StatusOr<SecretKey> LoadOrCreateMasterKey(const std::string& path, bool create) {
  return LoadOrCreateKeyFile(
      path, create, "master key",
      "the store's personal content cannot be opened without it; pass --master-key");
}

std::string MasterKeyCheck(const SecretKey& master) {
  static constexpr char kLabel[] = "ihs master key check v1";
  std::string out(32, '\0');
  crypto_generichash(reinterpret_cast<uint8_t*>(out.data()), out.size(), U8(kLabel),
                     sizeof(kLabel) - 1, master.data(), master.size());
  return out;
}

SecretKey DigestKey(const SecretKey& master) {
  SecretKey k;
  crypto_kdf_derive_from_key(k.data(), k.size(), 1, "ihsdigst", master.data());
  return k;
}

SecretKey BlindIndexKey(const SecretKey& master) {
  SecretKey k;
  crypto_kdf_derive_from_key(k.data(), k.size(), 2, "ihsblind", master.data());
  return k;
}

std::string KeyedDigest(const SecretKey& key, absl::string_view data) {
  std::string out(32, '\0');
  crypto_generichash(reinterpret_cast<uint8_t*>(out.data()), out.size(), U8(data), data.size(),
                     key.data(), key.size());
  return out;
}

uint32_t ClassKeyVersionOfYear(uint16_t channel, uint16_t type, int32_t year) {
  const uint32_t y = static_cast<uint32_t>(std::clamp<int64_t>(year, 1, (1 << 22) - 1));
  return y << 10 | static_cast<uint32_t>(std::min<uint16_t>(channel, 31)) << 5 |
         std::min<uint16_t>(type, 31);
}

uint32_t ClassKeyVersion(uint16_t channel, uint16_t type, int64_t occurred_at_micros) {
  const int64_t year =
      absl::ToCivilYear(absl::FromUnixMicros(occurred_at_micros), absl::UTCTimeZone()).year();
  return ClassKeyVersionOfYear(channel, type,
                               static_cast<int32_t>(std::clamp<int64_t>(year, 1, (1 << 22) - 1)));
}

std::optional<KeyClass> ClassOfKeyVersion(uint32_t version) {
  if (version < (1u << 10)) return std::nullopt;
  KeyClass c;
  c.year = static_cast<int32_t>(version >> 10);
  c.channel = static_cast<uint16_t>((version >> 5) & 31);
  c.type = static_cast<uint16_t>(version & 31);
  return c;
}

std::string ContentKeyRow(absl::string_view stream, uint32_t version) {
  std::string row(stream);
  if (version == kPartyKeyVersion) return row;
  row.push_back('\0');
  PutBigEndian32(&row, version);
  return row;
}

bool ParseContentKeyRow(absl::string_view row, std::string* stream, uint32_t* version) {
  const size_t zero = row.find('\0');
  if (zero == absl::string_view::npos) {
    *stream = std::string(row);
    *version = kPartyKeyVersion;
    return !row.empty();
  }
  if (zero == 0 || row.size() != zero + 5) return false;
  *stream = std::string(row.substr(0, zero));
  *version = GetBigEndian32(row.data() + zero + 1);
  return true;
}

DataKey NewDataKey(uint32_t version) {
  DataKey k;
  k.version = version;
  crypto_aead_xchacha20poly1305_ietf_keygen(k.key.data());
  return k;
}

std::string WrapDataKey(const SecretKey& master, absl::string_view stream, const DataKey& key) {
  std::string ad = WrapAdditionalData(stream, key.version);
  std::string out(1, '\x01');
  PutBigEndian32(&out, key.version);
  uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
  randombytes_buf(nonce, sizeof(nonce));
  out.append(reinterpret_cast<char*>(nonce), sizeof(nonce));
  size_t head = out.size();
  out.resize(head + key.key.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(reinterpret_cast<uint8_t*>(&out[head]), &clen,
                                             key.key.data(), key.key.size(), U8(ad), ad.size(),
                                             nullptr, nonce, master.data());
  return out;
}

absl::StatusOr<DataKey> UnwrapDataKey(const SecretKey& master, absl::string_view stream,
                                      absl::string_view wrapped) {
  constexpr size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
  constexpr size_t kWrapped = 32 + crypto_aead_xchacha20poly1305_ietf_ABYTES;
  if (wrapped.size() != 1 + 4 + kNonce + kWrapped || wrapped[0] != '\x01') {
    return absl::DataLossError(absl::StrCat("data key of stream ", stream, " is malformed"));
  }
  DataKey key;
  key.version = GetBigEndian32(wrapped.data() + 1);
  std::string ad = WrapAdditionalData(stream, key.version);
  unsigned long long plen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          key.key.data(), &plen, nullptr, U8(wrapped.substr(5 + kNonce)), kWrapped, U8(ad),
          ad.size(), U8(wrapped.substr(5, kNonce)), master.data()) != 0) {
    return absl::DataLossError(absl::StrCat("data key of stream ", stream,
                                            " does not authenticate under this master key"));
  }
  return key;
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  randombytes_buf(out.data(), out.size());
  return out;
}

Sealed SealContent(const DataKey& key, absl::string_view nonce, absl::string_view additional_data,
                   absl::string_view plaintext) {
  Sealed s;
  s.nonce = std::string(nonce);
  s.ciphertext.resize(plaintext.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      reinterpret_cast<uint8_t*>(s.ciphertext.data()), &clen, U8(plaintext), plaintext.size(),
      U8(additional_data), additional_data.size(), nullptr, U8(s.nonce), key.key.data());
  return s;
}

absl::StatusOr<std::string> OpenContent(const DataKey& key, absl::string_view additional_data,
                                        absl::string_view nonce, absl::string_view ciphertext) {
  if (nonce.size() != crypto_aead_xchacha20poly1305_ietf_NPUBBYTES ||
      ciphertext.size() < crypto_aead_xchacha20poly1305_ietf_ABYTES) {
    return absl::DataLossError("sealed content is malformed");
  }
  std::string out(ciphertext.size() - crypto_aead_xchacha20poly1305_ietf_ABYTES, '\0');
  unsigned long long plen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<uint8_t*>(out.data()), &plen, nullptr, U8(ciphertext), ciphertext.size(),
          U8(additional_data), additional_data.size(), U8(nonce), key.key.data()) != 0) {
    return absl::DataLossError("sealed content does not authenticate under its data key");
  }
  return out;
}

}  // namespace ihs::store::internal
