// `ihs audit verify-export` reads files an auditor was handed: hostile input. A packed archive
// whose records do not have their schema's shape (text without its NUL, a struct where text
// belongs) is reported as damaged (exit 4), never a crash: Cap'n Proto checks text as it is read,
// and the copy of a record kept the bad bytes until a field was read outside any catch, which
// ended the process (exit 134).
#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "schema/export.capnp.h"
#include "store/tlog.h"
#include "tests/testutil/testutil.h"

namespace ihs {
namespace {

// Runs `command`; its exit code (128 + the signal when killed) and, in `output`, what it printed.
int RunCommand(const std::string& command, const std::string& out_path, std::string* output) {
  const int status = std::system((command + " >" + out_path + " 2>&1").c_str());
  std::ifstream in(out_path);
  output->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void WritePacked(const std::string& path, capnp::MessageBuilder& m) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  capnp::writePackedMessageToFd(fd, m);
  ::close(fd);
}

TEST(VerifyExport, RecordsOfTheWrongShapeAreDamageNotACrash) {
  ASSERT_GE(sodium_init(), 0);
  testing::TempDir dir;
  const std::string ihs = IHS_BINARY;
  tlog::PublicKey pub;
  std::array<uint8_t, tlog::kSecretKeyBytes> secret;
  crypto_sign_keypair(pub.data(), secret.data());
  // A header that reads well up to one text field whose NUL is gone: the party (read first), the
  // head (read after the key); and one whose party is a struct where text belongs.
  for (int which = 0; which < 3; ++which) {
    SCOPED_TRACE(which);
    capnp::MallocMessageBuilder header;
    auto h = header.initRoot<schema::ExportRecord>().initHeader();
    h.setFormat("ihs export v1");
    h.setParty("customer-ada");
    h.setHead("ihs/0000000000000000\n1\nAAAA\n\n");
    h.setVerifierKey(tlog::FormatVerifierKey(tlog::VerifierKeyFor(pub)));
    if (which == 0) {
      auto t = h.getParty();
      *const_cast<char*>(t.end()) = 'x';
    } else if (which == 1) {
      auto t = h.getHead();
      *const_cast<char*>(t.end()) = 'x';
    } else {
      // ExportHeader's pointers: format, party, head, verifierKey. The party's pointer is made
      // to point at a struct.
      capnp::AnyStruct::Builder any = capnp::toAny(h);
      capnp::MallocMessageBuilder other;
      auto s = other.initRoot<schema::ExportTrailer>();
      s.setEvents(7);
      any.getPointerSection()[1].setAs<schema::ExportTrailer>(s.asReader());
    }
    const std::string path = dir.Sub("archive" + std::to_string(which));
    WritePacked(path, header);
    std::string output;
    const int rc = RunCommand(ihs + " audit verify-export " + path, dir.Sub("out"), &output);
    EXPECT_EQ(rc, 4) << "exit " << rc << " (134 is a crash): " << output;
    EXPECT_NE(output.find("damaged"), std::string::npos) << output;
  }
}

}  // namespace
}  // namespace ihs
