// GUID text form, vsock port <-> service GUID, SOCKADDR_HV byte layout.
#include <gtest/gtest.h>

#include "uvm/hcs/guid.h"
#include "uvm/hcs/hvsocket.h"

namespace uvmshim::uvm::hcs {
namespace {

TEST(Guid, RoundTripsLowerCase) {
  auto guid = ParseGuid("00000ac9-facb-11e6-bd58-64006a7986d3");
  ASSERT_TRUE(guid);
  EXPECT_EQ(guid->data1, 0x00000ac9u);
  EXPECT_EQ(guid->data2, 0xfacbu);
  EXPECT_EQ(guid->data3, 0x11e6u);
  EXPECT_EQ(guid->data4[0], 0xbd);
  EXPECT_EQ(guid->data4[7], 0xd3);
  EXPECT_EQ(ToString(*guid), "00000ac9-facb-11e6-bd58-64006a7986d3");
}

TEST(Guid, ParseIsCaseInsensitiveAndAcceptsBraces) {
  auto upper = ParseGuid("00000AC9-FACB-11E6-BD58-64006A7986D3");
  auto braces = ParseGuid("{00000ac9-FaCb-11e6-bd58-64006a7986d3}");
  ASSERT_TRUE(upper);
  ASSERT_TRUE(braces);
  EXPECT_EQ(*upper, *braces);
  EXPECT_EQ(ToString(*upper), "00000ac9-facb-11e6-bd58-64006a7986d3");
}

TEST(Guid, RejectsMalformedText) {
  for (const char* bad : {
           "",
           "00000ac9",
           "00000ac9-facb-11e6-bd58-64006a7986d",     // one digit short
           "00000ac9-facb-11e6-bd58-64006a7986d3a",   // one too many
           "00000ac9-facb-11e6-bd5864006a7986d3-",    // dash misplaced
           "00000ac9xfacb-11e6-bd58-64006a7986d3",    // not a dash
           "00000ag9-facb-11e6-bd58-64006a7986d3",    // not hex
           "+0000ac9-facb-11e6-bd58-64006a7986d3",    // sign
           " 0000ac9-facb-11e6-bd58-64006a7986d3",    // space
           "{00000ac9-facb-11e6-bd58-64006a7986d3",   // unbalanced brace
           "(00000ac9-facb-11e6-bd58-64006a7986d3)",  // wrong brackets
       }) {
    EXPECT_FALSE(ParseGuid(bad)) << '"' << bad << '"';
  }
}

TEST(Guid, ParseOrThrowNamesWhat) {
  try {
    ParseGuidOrThrow("nope", "VM id");
    FAIL() << "no exception";
  } catch (const VmError& e) {
    EXPECT_STREQ(e.what(), "VM id: not a GUID: \"nope\"");
  }
}

TEST(HvSocket, VsockPortMapsToTemplateGuid) {
  EXPECT_EQ(ToString(VsockPortServiceId(2761)), "00000ac9-facb-11e6-bd58-64006a7986d3");
  EXPECT_EQ(ToString(VsockPortServiceId(1024)), "00000400-facb-11e6-bd58-64006a7986d3");
  EXPECT_EQ(ToString(VsockPortServiceId(0x40000000)), "40000000-facb-11e6-bd58-64006a7986d3");
  auto parsed = ParseGuid("00000AC9-FACB-11E6-BD58-64006A7986D3");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(VsockPortFromServiceId(*parsed), 2761u);
  EXPECT_EQ(VsockPortFromServiceId(kHvGuidLoopback), std::nullopt);
  for (std::uint32_t port : {0u, 1u, 564u, 1024u, 0xFFFFFFFEu}) {
    EXPECT_EQ(VsockPortFromServiceId(VsockPortServiceId(port)), port);
  }
}

TEST(HvSocket, WellKnownVmIds) {
  EXPECT_EQ(ToString(kHvGuidWildcard), "00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(ToString(kHvGuidChildren), "90db8b89-0d35-4f79-8ce9-49ea0ac8b7cd");
  EXPECT_EQ(ToString(kHvGuidLoopback), "e0e16197-dd56-4a10-9195-5ee7a155a838");
  EXPECT_EQ(ToString(kHvGuidParent), "a42e7cda-d03f-480c-9cc2-a4de20abb878");
}

TEST(HvSocket, SockaddrLayoutIsWindows) {
  static_assert(kSockaddrHvSize == 2 + 2 + 16 + 16);
  static_assert(kSockaddrHvFamilyOffset == 0 && kSockaddrHvReservedOffset == 2 &&
                kSockaddrHvVmIdOffset == 4 && kSockaddrHvServiceIdOffset == 20);
  EXPECT_EQ(kAfHyperV, 34);
  EXPECT_EQ(kHvProtocolRaw, 1);
  const Guid vm = *ParseGuid("01020304-0506-0708-090a-0b0c0d0e0f10");
  const auto bytes = PackSockaddrHv(vm, VsockPortServiceId(2761));
  const std::array<std::uint8_t, 36> expected = {
      34,   0,                                        // Family = AF_HYPERV, little-endian
      0,    0,                                        // Reserved
      0x04, 0x03, 0x02, 0x01, 0x06, 0x05, 0x08, 0x07,  // VmId: Data1..3 little-endian
      0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,  //       Data4 as is
      0xc9, 0x0a, 0x00, 0x00, 0xcb, 0xfa, 0xe6, 0x11,  // ServiceId = port 2761 template
      0xbd, 0x58, 0x64, 0x00, 0x6a, 0x79, 0x86, 0xd3,
  };
  EXPECT_EQ(bytes, expected);
}

}  // namespace
}  // namespace uvmshim::uvm::hcs
