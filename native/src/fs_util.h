// Thin RAII wrappers over POSIX file calls; every failure throws ERR_IO with syscall/errno/path.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace sluice {

class Fd {
 public:
  Fd() = default;
  Fd(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept;
  ~Fd();

  int get() const { return fd_; }
  const std::string& path() const { return path_; }

  uint64_t Size() const;
  // Reads until `len` bytes or end of file; returns the count read.
  size_t PreadFull(void* buf, size_t len, uint64_t offset) const;
  void PwriteFull(const void* buf, size_t len, uint64_t offset) const;
  // O_DIRECT write of whole, aligned sectors. False (nothing reliable written) when the
  // filesystem turns the direct write down with EINVAL, so the caller can write it buffered.
  bool TryPwriteDirect(const void* buf, size_t len, uint64_t offset) const;
  void Truncate(uint64_t size) const;
  // Sets the size to `size`, allocating blocks for [from, size) up front where the filesystem
  // can, so a full disk fails here (ENOSPC) instead of later inside a mapped write.
  void Reserve(uint64_t from, uint64_t size) const;
  void Sync() const;
  // Closes now and reports a close() failure (written data may be lost), unlike the destructor.
  void Close();

 private:
  int fd_ = -1;
  std::string path_;
};

Fd OpenForRead(const std::string& path);
// Buffer, length and offset alignment used for O_DIRECT writes.
constexpr uint64_t kDirectAlign = 4096;
// A second, O_DIRECT descriptor for an existing output; an empty Fd when the filesystem has no
// O_DIRECT (the caller then writes through the page cache).
Fd OpenDirect(const std::string& path);

// Ends a file→file output: a direct descriptor (if open) is closed and the file cut back to
// `size` (O_DIRECT wrote whole sectors), then the output is fsynced and closed.
void FinishOutput(Fd& out, Fd& direct, uint64_t size);
// Throws ERR_IO (EINVAL) when `out_path` names the same file as `in`: opening it for output
// would truncate the input before it is read.
void RefuseSameFile(const Fd& in, const std::string& out_path);
// O_CREAT|O_WRONLY|O_CLOEXEC, mode 0644 (less the umask); `truncate` adds O_TRUNC.
Fd OpenForWrite(const std::string& path, bool truncate, bool readable = false);

// Heap buffer aligned to a page, for large I/O windows.
class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t size);
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer();
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace sluice

namespace sluice {

// A MAP_SHARED window of a file; `data()` points at the requested offset (which need not be
// page-aligned). Unmapped on destruction, so mapped pages stop counting toward RSS.
class Mapping {
 public:
  Mapping(const Fd& fd, uint64_t offset, size_t len, bool writable);
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();
  uint8_t* data() const { return data_; }
  // Faults the whole window in with one call (MADV_POPULATE_*). Throws ERR_IO if part of the
  // window is past the end of the file, so a shrinking file is an error rather than a SIGBUS.
  void Populate(bool write) const;

 private:
  std::string path_;
  void* base_ = nullptr;
  size_t map_len_ = 0;
  uint8_t* data_ = nullptr;
};

}  // namespace sluice
