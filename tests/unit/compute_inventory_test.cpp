// The compute inventory (runtime/compute/inventory.h): fake inventory files,
// accelerator specs, GPU model names and why a shape cannot be placed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "runtime/compute/inventory.h"
#include "runtime/compute/spec.h"

namespace plinth::compute {
namespace {

namespace fs = std::filesystem;

std::string WriteFile(const std::string& name, const std::string& text) {
  fs::path p = fs::path(::testing::TempDir()) / name;
  std::ofstream(p) << text;
  return p.string();
}

TEST(AcceleratorsTest, ParsesTypeAndCountAnyTypeAndQpuSim) {
  std::string why;
  auto a = ParseAccelerators("H100:8", &why);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->type, "H100");
  EXPECT_EQ(a->count, 8);
  a = ParseAccelerators("4", &why);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->type, "");
  EXPECT_EQ(a->count, 4);
  a = ParseAccelerators("qpu-sim:24", &why);
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->IsQpuSim());
  a = ParseAccelerators("", &why);
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->empty());
}

TEST(AcceleratorsTest, RefusesBadCountsAndTypesSayingHowToWriteIt) {
  for (const char* bad : {"H100:0", "H100:", "H100:x", ":8", "H 100:8", "qpu-sim:65", "H100:99999"}) {
    std::string why;
    EXPECT_FALSE(ParseAccelerators(bad, &why)) << bad;
    EXPECT_NE(why.find("\"H100:8\""), std::string::npos) << bad << ": " << why;
  }
}

TEST(InventoryTest, ReadsAFakeInventory) {
  std::string path = WriteFile("gpus_ok.json", R"({"gpus":[{"index":0,"type":"H100","memory":"80GiB"},)"
                                               R"({"index":3,"type":"H100","fault":"memory"}]})");
  Inventory inv;
  std::string error;
  ASSERT_TRUE(ReadFakeInventory(path, &inv, &error)) << error;
  ASSERT_EQ(inv.gpus.size(), 2u);
  EXPECT_TRUE(inv.fake);
  EXPECT_EQ(inv.gpus[0].memory_bytes, 80ull << 30);
  EXPECT_EQ(inv.gpus[1].index, 3);
  EXPECT_EQ(inv.gpus[1].fault, "memory");
  EXPECT_NE(inv.source.find("2 fake H100"), std::string::npos) << inv.source;
}

TEST(InventoryTest, AFakeInventoryMayDescribeTheMachinesCpusAndMemory) {
  Inventory inv;
  inv.cpus = 2;
  inv.memory_bytes = 1;
  std::string error;
  ASSERT_TRUE(ReadFakeInventory(WriteFile("machine.json", R"({"cpus": 8, "memory": "64GiB", "gpus": []})"),
                                &inv, &error))
      << error;
  EXPECT_EQ(inv.cpus, 8);
  EXPECT_EQ(inv.memory_bytes, 64ull << 30);
  EXPECT_TRUE(inv.gpus.empty());
  Shape s;
  s.cpus = 8;
  EXPECT_EQ(ShapeMisfit(s, inv), "");
  // Without them the machine's own are kept.
  inv.cpus = 3;
  ASSERT_TRUE(ReadFakeInventory(WriteFile("gpus_only.json", R"({"gpus": []})"), &inv, &error)) << error;
  EXPECT_EQ(inv.cpus, 3);
}

TEST(InventoryTest, RefusesABadFakeInventoryNamingTheEntry) {
  struct Case {
    const char* text;
    const char* expect;
  } cases[] = {
      {"[]", "not a JSON object"},
      {R"({"gpus":[{"index":0,"type":"H100"},{"index":0,"type":"H100"}]})", "gpus[1].index 0 appears twice"},
      {R"({"gpus":[{"type":"H100"}]})", "gpus[0].index"},
      {R"({"gpus":[{"index":1,"type":"H100","fault":"melted"}]})", "gpus[0].fault"},
      {R"({"gpus":[{"index":1,"type":"H100","memory":"lots"}]})", "gpus[0].memory"},
      {R"({"cpus":0,"gpus":[]})", "cpus must be a whole number from 1"},
      {R"({"cpus":"8","gpus":[]})", "cpus must be a whole number from 1"},
      {R"({"memory":"lots","gpus":[]})", "memory must be a size"},
  };
  for (const Case& c : cases) {
    Inventory inv;
    std::string error;
    EXPECT_FALSE(ReadFakeInventory(WriteFile("gpus_bad.json", c.text), &inv, &error)) << c.text;
    EXPECT_NE(error.find(c.expect), std::string::npos) << error;
  }
  Inventory inv;
  std::string error;
  EXPECT_FALSE(ReadFakeInventory("/nonexistent/gpus.json", &inv, &error));
  EXPECT_NE(error.find("PLINTH_FAKE_GPUS"), std::string::npos) << error;
}

TEST(InventoryTest, GpuModelsFromCudaDeviceNames) {
  EXPECT_EQ(GpuModel("NVIDIA H100 80GB HBM3"), "H100");
  EXPECT_EQ(GpuModel("NVIDIA A100-SXM4-40GB"), "A100");
  EXPECT_EQ(GpuModel("Tesla V100-PCIE-16GB"), "V100");
  EXPECT_EQ(GpuModel("NVIDIA GeForce RTX 4090"), "RTX4090");
  EXPECT_TRUE(GpuTypeMatches("h100", "H100"));
  EXPECT_TRUE(GpuTypeMatches("", "A100"));
  EXPECT_FALSE(GpuTypeMatches("A100", "H100"));
}

TEST(InventoryTest, ShapeMisfitSaysWhyAShapeCannotBePlaced) {
  Inventory inv;
  inv.cpus = 4;
  inv.memory_bytes = 8ull << 30;
  inv.fake = true;
  inv.gpus = {{0, "H100", 0, "none", true}, {1, "H100", 0, "none", true}};
  Shape s;
  s.cpus = 2;
  s.accelerators = {"H100", 2};
  EXPECT_EQ(ShapeMisfit(s, inv), "");
  s.accelerators = {"A100", 1};
  EXPECT_EQ(ShapeMisfit(s, inv), "this machine has no A100 (inventory: 2 fake H100)");
  s.accelerators = {"H100", 8};
  EXPECT_EQ(ShapeMisfit(s, inv), "8 H100 wanted, this machine has 2");
  s.accelerators = {};
  s.cpus = 64;
  EXPECT_EQ(ShapeMisfit(s, inv), "64 CPUs wanted, this machine has 4");
  s.cpus = 1;
  s.accelerators = {"qpu-sim", 40};
  EXPECT_NE(ShapeMisfit(s, inv).find("40-qubit state vector needs"), std::string::npos);
  s.accelerators = {"qpu-sim", 20};
  EXPECT_EQ(ShapeMisfit(s, inv), "");
}

}  // namespace
}  // namespace plinth::compute
