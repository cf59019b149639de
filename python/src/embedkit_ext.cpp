// embedkit._embedkit: the C ABI (include/embedkit/c_api.h) for Python, and nothing more.
//
// Arrays cross as DLPack tensors without copies: any object with __dlpack__ (or the buffer
// protocol) is imported by nanobind with conversions off, and its DLTensor is handed to the C ABI
// as it is, data pointer, shape and strides included. Every C call runs without the GIL. A failed
// call raises the exception embedkit._errors.error_for builds from the status and ek_last_error().
#include <embedkit/c_api.h>
#include <embedkit/c_api_collection.h>

#include <Python.h>
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace nb = nanobind;

namespace {

// Raises the Python exception for `status` (not EK_OK) with this thread's last error.
[[noreturn]] void raise_status(ek_status status) {
  const std::string message = ek_last_error();
  nb::object error = nb::module_::import_("embedkit._errors")
                         .attr("error_for")(static_cast<int>(status), ek_status_name(status), message);
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
  throw nb::python_error();
}

void check(ek_status status) {
  if (status != EK_OK) raise_status(status);
}

// Raises TypeError or ValueError with `message`, as the C ABI's own checks would.
[[noreturn]] void raise_python(PyObject* type, const std::string& message) {
  PyErr_SetString(type, message.c_str());
  throw nb::python_error();
}

// The CUDA stream a call names, as Python gives it: a cudaStream_t as an int, 0 meaning CUDA's
// legacy default stream; none: the call names no stream.
using Stream = std::optional<std::uintptr_t>;

// The stream as the C ABI and DLPack take it: NULL when none is named, and the legacy default
// stream as cudaStreamLegacy (1), since NULL means "none named" to the C ABI and DLPack reserves 0.
std::uintptr_t stream_handle(const Stream& stream) {
  if (!stream) return 0;
  return *stream == 0 ? 1 : *stream;
}
void* c_stream(const Stream& stream) { return reinterpret_cast<void*>(stream_handle(stream)); }

// `object` itself, or, when the call names a stream and `object` is a CUDA array, the DLPack capsule
// its producer exports for that stream: `__dlpack__(stream=...)` makes the producer order its
// pending work on the array before the consumer's stream, as the DLPack protocol has it.
nb::object exported_for(nb::handle object, const Stream& stream) {
  constexpr int kCudaDevice = 2;  // DLPack's kDLCUDA
  if (!stream || !nb::hasattr(object, "__dlpack_device__") || !nb::hasattr(object, "__dlpack__")) {
    return nb::borrow(object);
  }
  const nb::object device = object.attr("__dlpack_device__")();
  if (nb::cast<int>(device[0]) != kCudaDevice) return nb::borrow(object);
  return object.attr("__dlpack__")(nb::arg("stream") = stream_handle(stream));
}

// A Python array borrowed as a DLTensor for one call: the nanobind reference keeps its memory alive.
class Borrowed {
 public:
  Borrowed(nb::handle given, const char* name, bool writable, const Stream& stream = std::nullopt) {
    const nb::object object = exported_for(given, stream);
    if (writable) {
      if (!nb::try_cast(object, writable_, /*convert=*/false)) {
        nb::ndarray<nb::ro> read_only;
        if (nb::try_cast(object, read_only, /*convert=*/false)) {
          raise_python(PyExc_ValueError, std::string(name) + " is read-only; pass a writable array");
        }
        raise_python(PyExc_TypeError, not_an_array(name, object));
      }
      describe(writable_);
    } else {
      if (!nb::try_cast(object, read_only_, /*convert=*/false)) {
        raise_python(PyExc_TypeError, not_an_array(name, object));
      }
      describe(read_only_);
    }
  }
  Borrowed(const Borrowed&) = delete;
  Borrowed& operator=(const Borrowed&) = delete;

  DLTensor* get() { return &tensor_; }

 private:
  static std::string not_an_array(const char* name, nb::handle object) {
    std::string message = std::string(name) + " must be an array with __dlpack__ or the buffer protocol, got " +
                          nb::cast<std::string>(nb::str(object.type().attr("__name__")));
    if (nb::hasattr(object, "__dlpack__")) message += " whose __dlpack__ failed";
    return message;
  }

  template <class Array>
  void describe(const Array& array) {
    const auto ndim = static_cast<std::int32_t>(array.ndim());
    shape_.assign(array.shape_ptr(), array.shape_ptr() + ndim);
    if (array.stride_ptr() != nullptr) strides_.assign(array.stride_ptr(), array.stride_ptr() + ndim);
    tensor_.data = array.data_handle();
    tensor_.device.device_type = static_cast<DLDeviceType>(array.device_type());
    tensor_.device.device_id = array.device_id();
    tensor_.ndim = ndim;
    tensor_.dtype.code = array.dtype().code;
    tensor_.dtype.bits = array.dtype().bits;
    tensor_.dtype.lanes = array.dtype().lanes;
    tensor_.shape = shape_.data();
    tensor_.strides = array.stride_ptr() != nullptr ? strides_.data() : nullptr;
    tensor_.byte_offset = array.byte_offset();
  }

  nb::ndarray<> writable_;
  nb::ndarray<nb::ro> read_only_;
  std::vector<std::int64_t> shape_;
  std::vector<std::int64_t> strides_;
  DLTensor tensor_{};
};

// An optional input: None gives NULL.
class MaybeBorrowed {
 public:
  MaybeBorrowed(nb::handle object, const char* name, const Stream& stream = std::nullopt) {
    if (!object.is_none()) borrowed_.emplace(object, name, false, stream);
  }
  DLTensor* get() { return borrowed_ ? borrowed_->get() : nullptr; }

 private:
  std::optional<Borrowed> borrowed_;
};

// Calls `write(buffer, capacity, &length)` of a text entry point until the buffer is large enough
// (the text may grow between the size query and the call, e.g. the step count in the info).
template <class Write>
std::string read_text(Write&& write) {
  std::string buffer;
  for (;;) {
    std::size_t length = 0;
    ek_status status;
    {
      nb::gil_scoped_release release;
      status = write(buffer.empty() ? nullptr : buffer.data(), buffer.size(), &length);
    }
    if (status == EK_OK) {
      buffer.resize(length - 1);
      return buffer;
    }
    if (status != EK_INVALID_ARGUMENT || length <= buffer.size()) raise_status(status);
    buffer.assign(length, '\0');
  }
}

// Runs a C call without the GIL and raises on failure.
template <class Call>
void call_unlocked(Call&& call) {
  ek_status status;
  {
    nb::gil_scoped_release release;
    status = call();
  }
  check(status);
}

// The frameworks a library-allocated output can be handed to; refused before any call runs, so a
// bad name changes nothing.
void check_framework(const std::string& framework) {
  if (framework != "numpy" && framework != "torch") {
    raise_python(PyExc_ValueError, "framework must be 'numpy' or 'torch', got '" + framework + "'");
  }
}

// A tensor the library allocated, as a NumPy array or PyTorch tensor that owns it: the capsule's
// destructor calls the DLManagedTensor's deleter, which returns the memory to embedkit's output
// cache when the framework frees the array. Until the capsule holds it, `managed` is freed on any
// failure.
nb::object adopt(DLManagedTensor* managed, const std::string& framework) {
  const auto free_managed = [](DLManagedTensor* tensor) { tensor->deleter(tensor); };
  std::unique_ptr<DLManagedTensor, decltype(free_managed)> owned(managed, free_managed);
  const DLTensor& tensor = managed->dl_tensor;
  const std::vector<std::size_t> shape(tensor.shape, tensor.shape + tensor.ndim);
  const bool ids = tensor.dtype.code == kDLInt;  // int64 ids (a sparse gradient's), else float32
  void* data = tensor.data;
  nb::capsule owner(managed, [](void* pointer) noexcept {
    auto* held = static_cast<DLManagedTensor*>(pointer);
    held->deleter(held);
  });
  owned.release();  // the capsule frees it from here on
  if (framework == "torch") {
    if (ids) return nb::cast(nb::ndarray<nb::pytorch, std::int64_t>(data, shape.size(), shape.data(), owner));
    return nb::cast(nb::ndarray<nb::pytorch, float>(data, shape.size(), shape.data(), owner));
  }
  if (ids) return nb::cast(nb::ndarray<nb::numpy, std::int64_t>(data, shape.size(), shape.data(), owner));
  return nb::cast(nb::ndarray<nb::numpy, float>(data, shape.size(), shape.data(), owner));
}

// Two library-allocated tensors (a sparse gradient's ids and rows) as one tuple; the second is freed
// if adopting the first fails.
nb::tuple adopt_pair(DLManagedTensor* first, DLManagedTensor* second, const std::string& framework) {
  const auto free_managed = [](DLManagedTensor* tensor) { tensor->deleter(tensor); };
  std::unique_ptr<DLManagedTensor, decltype(free_managed)> pending(second, free_managed);
  nb::object a = adopt(first, framework);
  return nb::make_tuple(a, adopt(pending.release(), framework));
}

// An embedding table: owns one ek_table.
class Table {
 public:
  explicit Table(const std::string& config_json) {
    ek_table* table = nullptr;
    call_unlocked([&] { return ek_table_create(config_json.c_str(), &table); });
    table_ = table;
  }
  static Table load(const std::string& directory) {
    ek_table* table = nullptr;
    call_unlocked([&] { return ek_load(directory.c_str(), &table); });
    return Table(table);
  }
  Table(Table&& other) noexcept : table_(std::exchange(other.table_, nullptr)) {}
  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;
  Table& operator=(Table&&) = delete;
  ~Table() { ek_table_destroy(table_); }

  void lookup(nb::handle indices, nb::handle out, const Stream& stream) {
    Borrowed ids(indices, "indices", false, stream), output(out, "out", true, stream);
    call_unlocked([&] { return ek_lookup_on_stream(table_, ids.get(), output.get(), c_stream(stream)); });
  }
  void lookup_pooled(nb::handle indices, nb::handle offsets, nb::handle per_sample_weights, const std::string& mode,
                     nb::handle out, const Stream& stream) {
    Borrowed ids(indices, "indices", false, stream), csr(offsets, "offsets", false, stream),
        output(out, "out", true, stream);
    MaybeBorrowed weights(per_sample_weights, "per_sample_weights", stream);
    call_unlocked([&] {
      return ek_lookup_pooled_on_stream(table_, ids.get(), csr.get(), weights.get(), mode.c_str(), output.get(),
                                        c_stream(stream));
    });
  }
  nb::object lookup_new(nb::handle indices, const std::string& framework, const Stream& stream) {
    check_framework(framework);
    Borrowed ids(indices, "indices", false, stream);
    DLManagedTensor* out = nullptr;
    call_unlocked([&] { return ek_lookup_new_on_stream(table_, ids.get(), &out, c_stream(stream)); });
    return adopt(out, framework);
  }
  nb::object lookup_pooled_new(nb::handle indices, nb::handle offsets, nb::handle per_sample_weights,
                               const std::string& mode, const std::string& framework, const Stream& stream) {
    check_framework(framework);
    Borrowed ids(indices, "indices", false, stream), csr(offsets, "offsets", false, stream);
    MaybeBorrowed weights(per_sample_weights, "per_sample_weights", stream);
    DLManagedTensor* out = nullptr;
    call_unlocked([&] {
      return ek_lookup_pooled_new_on_stream(table_, ids.get(), csr.get(), weights.get(), mode.c_str(), &out,
                                            c_stream(stream));
    });
    return adopt(out, framework);
  }
  void compute_mask(nb::handle indices, nb::handle mask, const Stream& stream) {
    Borrowed ids(indices, "indices", false, stream), output(mask, "mask", true, stream);
    call_unlocked([&] { return ek_compute_mask_on_stream(table_, ids.get(), output.get(), c_stream(stream)); });
  }
  void train_step(nb::handle indices, nb::handle grad, const Stream& stream) {
    Borrowed ids(indices, "indices", false, stream), gradient(grad, "grad_out", false, stream);
    call_unlocked([&] { return ek_train_step_on_stream(table_, ids.get(), gradient.get(), c_stream(stream)); });
  }
  void train_step_pooled(nb::handle indices, nb::handle offsets, nb::handle per_sample_weights, const std::string& mode,
                         nb::handle grad, const Stream& stream) {
    Borrowed ids(indices, "indices", false, stream), csr(offsets, "offsets", false, stream),
        gradient(grad, "grad_out", false, stream);
    MaybeBorrowed weights(per_sample_weights, "per_sample_weights", stream);
    call_unlocked([&] {
      return ek_train_step_pooled_on_stream(table_, ids.get(), csr.get(), weights.get(), mode.c_str(), gradient.get(),
                                            c_stream(stream));
    });
  }
  void get_weights(nb::handle out) {
    Borrowed output(out, "out", true);
    call_unlocked([&] { return ek_get_weights(table_, output.get()); });
  }
  void set_weights(nb::handle weights) {
    Borrowed values(weights, "weights", false);
    call_unlocked([&] { return ek_set_weights(table_, values.get()); });
  }
  nb::object weights_view(const std::string& framework) {
    check_framework(framework);
    DLManagedTensor* view = nullptr;
    call_unlocked([&] { return ek_weights_view(table_, &view); });
    return adopt(view, framework);
  }
  std::vector<std::string> optimizer_state_names() {
    std::vector<std::string> names;
    for (int k = 0; const char* name = ek_optimizer_state_name(table_, k); ++k) names.emplace_back(name);
    return names;
  }
  void get_optimizer_state(const std::string& name, nb::handle out) {
    Borrowed output(out, "out", true);
    call_unlocked([&] { return ek_get_optimizer_state(table_, name.c_str(), output.get()); });
  }
  void set_optimizer_state(std::int64_t step, const std::vector<std::string>& names,
                           const std::vector<nb::handle>& states) {
    if (names.size() != states.size()) {
      raise_python(PyExc_ValueError, "names and states must have the same length, got " + std::to_string(names.size()) +
                                         " and " + std::to_string(states.size()));
    }
    std::vector<std::unique_ptr<Borrowed>> borrowed;
    std::vector<const char*> name_pointers;
    std::vector<const DLTensor*> tensors;
    for (std::size_t i = 0; i < names.size(); ++i) {
      borrowed.push_back(std::make_unique<Borrowed>(states[i], "states", false));
      name_pointers.push_back(names[i].c_str());
      tensors.push_back(borrowed.back()->get());
    }
    call_unlocked(
        [&] { return ek_set_optimizer_state(table_, step, name_pointers.data(), tensors.data(), tensors.size()); });
  }
  nb::tuple sparse_grad_new(nb::handle indices, nb::handle grad, const std::string& framework, const Stream& stream) {
    check_framework(framework);
    Borrowed ids(indices, "indices", false, stream), gradient(grad, "grad_out", false, stream);
    DLManagedTensor* unique = nullptr;
    DLManagedTensor* rows = nullptr;
    call_unlocked([&] {
      return ek_sparse_grad_new_on_stream(table_, ids.get(), gradient.get(), &unique, &rows, c_stream(stream));
    });
    return adopt_pair(unique, rows, framework);
  }
  nb::tuple sparse_grad_pooled_new(nb::handle indices, nb::handle offsets, nb::handle per_sample_weights,
                                   const std::string& mode, nb::handle grad, const std::string& framework,
                                   const Stream& stream) {
    check_framework(framework);
    Borrowed ids(indices, "indices", false, stream), csr(offsets, "offsets", false, stream),
        gradient(grad, "grad_out", false, stream);
    MaybeBorrowed weights(per_sample_weights, "per_sample_weights", stream);
    DLManagedTensor* unique = nullptr;
    DLManagedTensor* rows = nullptr;
    call_unlocked([&] {
      return ek_sparse_grad_pooled_new_on_stream(table_, ids.get(), csr.get(), weights.get(), mode.c_str(),
                                                 gradient.get(), &unique, &rows, c_stream(stream));
    });
    return adopt_pair(unique, rows, framework);
  }
  void apply_sparse_grad(nb::handle unique_ids, nb::handle rows) {
    Borrowed ids(unique_ids, "unique_ids", false), values(rows, "rows", false);
    call_unlocked([&] { return ek_apply_sparse_grad(table_, ids.get(), values.get()); });
  }
  void set_learning_rate(double learning_rate) {
    call_unlocked([&] { return ek_set_learning_rate(table_, learning_rate); });
  }
  void migrate(const std::string& device) {
    call_unlocked([&] { return ek_table_migrate(table_, device.c_str()); });
  }
  void save(const std::string& directory) {
    call_unlocked([&] { return ek_save(table_, directory.c_str()); });
  }
  std::string info() {
    return read_text([&](char* buffer, std::size_t capacity, std::size_t* length) {
      return ek_table_info(table_, buffer, capacity, length);
    });
  }
  std::string summary(nb::handle batch) {
    MaybeBorrowed ids(batch, "batch");
    return read_text([&](char* buffer, std::size_t capacity, std::size_t* length) {
      return ek_table_summary(table_, ids.get(), buffer, capacity, length);
    });
  }

 private:
  friend class Collection;
  explicit Table(ek_table* table) : table_(table) {}
  ek_table* table_ = nullptr;
};

// One ek_collection; a batch is TorchRec's KeyedJaggedTensor as its parts (keys, values, lengths or
// offsets, weights).
class Collection {
 public:
  explicit Collection(const std::string& config_json) {
    ek_collection* collection = nullptr;
    call_unlocked([&] { return ek_collection_create(config_json.c_str(), &collection); });
    collection_ = collection;
  }
  Collection(const Collection&) = delete;
  Collection& operator=(const Collection&) = delete;
  ~Collection() { ek_collection_destroy(collection_); }

  std::pair<std::size_t, std::int64_t> shape() {
    std::size_t tables = 0;
    std::int64_t width = 0;
    check(ek_collection_shape(collection_, &tables, &width));
    return {tables, width};
  }
  Table table(std::size_t index) {
    ek_table* table = nullptr;
    check(ek_collection_table(collection_, index, &table));
    return Table(table);
  }
  void lookup_pooled(const std::vector<std::string>& keys, nb::handle values, nb::handle lengths, nb::handle offsets,
                     nb::handle weights, nb::handle out) {
    Batch batch(keys, values, lengths, offsets, weights);
    Borrowed output(out, "out", true);
    call_unlocked([&] {
      return ek_collection_lookup_pooled(collection_, batch.keys.data(), batch.keys.size(), batch.values.get(),
                                         batch.lengths.get(), batch.offsets.get(), batch.weights.get(), output.get());
    });
  }
  void train_step_pooled(const std::vector<std::string>& keys, nb::handle values, nb::handle lengths,
                         nb::handle offsets, nb::handle weights, nb::handle grad) {
    Batch batch(keys, values, lengths, offsets, weights);
    Borrowed gradient(grad, "grad", false);
    call_unlocked([&] {
      return ek_collection_train_step_pooled(collection_, batch.keys.data(), batch.keys.size(), batch.values.get(),
                                             batch.lengths.get(), batch.offsets.get(), batch.weights.get(),
                                             gradient.get());
    });
  }
  std::int64_t lookup_size(const std::vector<std::string>& keys, nb::handle values, nb::handle lengths,
                           nb::handle offsets) {
    Batch batch(keys, values, lengths, offsets, nb::none());
    std::int64_t size = 0;
    call_unlocked([&] {
      return ek_collection_lookup_size(collection_, batch.keys.data(), batch.keys.size(), batch.values.get(),
                                       batch.lengths.get(), batch.offsets.get(), &size);
    });
    return size;
  }
  void lookup(const std::vector<std::string>& keys, nb::handle values, nb::handle lengths, nb::handle offsets,
              nb::handle out) {
    Batch batch(keys, values, lengths, offsets, nb::none());
    Borrowed output(out, "out", true);
    call_unlocked([&] {
      return ek_collection_lookup(collection_, batch.keys.data(), batch.keys.size(), batch.values.get(),
                                  batch.lengths.get(), batch.offsets.get(), output.get());
    });
  }
  void train_step(const std::vector<std::string>& keys, nb::handle values, nb::handle lengths, nb::handle offsets,
                  nb::handle grad) {
    Batch batch(keys, values, lengths, offsets, nb::none());
    Borrowed gradient(grad, "grad", false);
    call_unlocked([&] {
      return ek_collection_train_step(collection_, batch.keys.data(), batch.keys.size(), batch.values.get(),
                                      batch.lengths.get(), batch.offsets.get(), gradient.get());
    });
  }

 private:
  struct Batch {
    Batch(const std::vector<std::string>& names, nb::handle ids, nb::handle lengths_in, nb::handle offsets_in,
          nb::handle weights_in)
        : values(ids, "values", false),
          lengths(lengths_in, "lengths"),
          offsets(offsets_in, "offsets"),
          weights(weights_in, "weights") {
      for (const std::string& name : names) keys.push_back(name.c_str());
    }
    std::vector<const char*> keys;
    Borrowed values;
    MaybeBorrowed lengths, offsets, weights;
  };
  ek_collection* collection_ = nullptr;
};

std::string plan(const std::string& request_json, bool as_json) {
  return read_text([&](char* buffer, std::size_t capacity, std::size_t* length) {
    return ek_plan(request_json.c_str(), as_json ? 1 : 0, buffer, capacity, length);
  });
}

}  // namespace

NB_MODULE(_embedkit, m) {
  m.doc() = "embedkit's C ABI over DLPack; use the embedkit package, not this module.";
  // PyTorch deliberately never releases the Python objects its autograd graph holds once the
  // interpreter is finalizing, so a table referenced by a live graph at exit would be reported as
  // a leak of ours (the OS reclaims it either way).
  nb::set_leak_warnings(false);
  m.def(
      "version", [] { return std::string(ek_version()); }, "The C library's version, MAJOR.MINOR.PATCH.");
  m.def(
      "optimizer_names",
      [] {
        std::vector<std::string> names;
        for (int k = 0; ek_optimizer_name(k) != nullptr; ++k) names.emplace_back(ek_optimizer_name(k));
        return names;
      },
      "ek_optimizer_name: the built-in optimizers a config may name.");
  m.def(
      "set_output_cache_capacity", [](std::size_t bytes) { check(ek_set_output_cache_capacity(bytes)); },
      nb::arg("bytes"), "ek_set_output_cache_capacity: bytes of freed outputs kept for reuse (0: none).");
  m.def("plan", &plan, nb::arg("request_json"), nb::arg("as_json"),
        "What placement would decide for a table: the text (or JSON) `embedkit plan` prints.");

  nb::class_<Collection>(m, "Collection", "One ek_collection: tables looked up and trained together.")
      .def(nb::init<const std::string&>(), nb::arg("config_json"), "ek_collection_create.")
      .def("shape", &Collection::shape, "ek_collection_shape: (tables, pooled width).")
      .def("table", &Collection::table, nb::arg("index"), "ek_collection_table: a handle of one table.")
      .def("lookup_pooled", &Collection::lookup_pooled, nb::arg("keys"), nb::arg("values"), nb::arg("lengths").none(),
           nb::arg("offsets").none(), nb::arg("weights").none(), nb::arg("out"), "ek_collection_lookup_pooled.")
      .def("train_step_pooled", &Collection::train_step_pooled, nb::arg("keys"), nb::arg("values"),
           nb::arg("lengths").none(), nb::arg("offsets").none(), nb::arg("weights").none(), nb::arg("grad"),
           "ek_collection_train_step_pooled.")
      .def("lookup_size", &Collection::lookup_size, nb::arg("keys"), nb::arg("values"), nb::arg("lengths").none(),
           nb::arg("offsets").none(), "ek_collection_lookup_size.")
      .def("lookup", &Collection::lookup, nb::arg("keys"), nb::arg("values"), nb::arg("lengths").none(),
           nb::arg("offsets").none(), nb::arg("out"), "ek_collection_lookup.")
      .def("train_step", &Collection::train_step, nb::arg("keys"), nb::arg("values"), nb::arg("lengths").none(),
           nb::arg("offsets").none(), nb::arg("grad"), "ek_collection_train_step.");

  nb::class_<Table>(m, "Table", "One ek_table; every method raises embedkit's exceptions on failure.")
      .def(nb::init<const std::string&>(), nb::arg("config_json"), "ek_table_create.")
      .def_static("load", &Table::load, nb::arg("directory"), "ek_load.")
      .def("lookup", &Table::lookup, nb::arg("indices"), nb::arg("out"), nb::arg("stream") = nb::none(),
           "ek_lookup_on_stream; stream: a cudaStream_t as an int (0: the legacy default stream) or None.")
      .def("lookup_pooled", &Table::lookup_pooled, nb::arg("indices"), nb::arg("offsets"),
           nb::arg("per_sample_weights").none(), nb::arg("mode"), nb::arg("out"), nb::arg("stream") = nb::none(),
           "ek_lookup_pooled_on_stream.")
      .def("lookup_new", &Table::lookup_new, nb::arg("indices"), nb::arg("framework"), nb::arg("stream") = nb::none(),
           "ek_lookup_new_on_stream: the rows in a new NumPy array or PyTorch tensor ('numpy' or 'torch').")
      .def("lookup_pooled_new", &Table::lookup_pooled_new, nb::arg("indices"), nb::arg("offsets"),
           nb::arg("per_sample_weights").none(), nb::arg("mode"), nb::arg("framework"), nb::arg("stream") = nb::none(),
           "ek_lookup_pooled_new_on_stream: the bags in a new NumPy array or PyTorch tensor.")
      .def("compute_mask", &Table::compute_mask, nb::arg("indices"), nb::arg("mask"), nb::arg("stream") = nb::none(),
           "ek_compute_mask_on_stream.")
      .def("train_step", &Table::train_step, nb::arg("indices"), nb::arg("grad"), nb::arg("stream") = nb::none(),
           "ek_train_step_on_stream.")
      .def("train_step_pooled", &Table::train_step_pooled, nb::arg("indices"), nb::arg("offsets"),
           nb::arg("per_sample_weights").none(), nb::arg("mode"), nb::arg("grad"), nb::arg("stream") = nb::none(),
           "ek_train_step_pooled_on_stream.")
      .def("get_weights", &Table::get_weights, nb::arg("out"), "ek_get_weights.")
      .def("set_weights", &Table::set_weights, nb::arg("weights"), "ek_set_weights.")
      .def("weights_view", &Table::weights_view, nb::arg("framework"),
           "ek_weights_view: the CPU table's weights in place, as a NumPy array or PyTorch tensor.")
      .def("optimizer_state_names", &Table::optimizer_state_names, "ek_optimizer_state_name for every slot.")
      .def("get_optimizer_state", &Table::get_optimizer_state, nb::arg("name"), nb::arg("out"),
           "ek_get_optimizer_state.")
      .def("set_optimizer_state", &Table::set_optimizer_state, nb::arg("step"), nb::arg("names"), nb::arg("states"),
           "ek_set_optimizer_state.")
      .def("sparse_grad_new", &Table::sparse_grad_new, nb::arg("indices"), nb::arg("grad"), nb::arg("framework"),
           nb::arg("stream") = nb::none(), "ek_sparse_grad_new_on_stream: (unique_ids, rows).")
      .def("sparse_grad_pooled_new", &Table::sparse_grad_pooled_new, nb::arg("indices"), nb::arg("offsets"),
           nb::arg("per_sample_weights").none(), nb::arg("mode"), nb::arg("grad"), nb::arg("framework"),
           nb::arg("stream") = nb::none(), "ek_sparse_grad_pooled_new_on_stream: (unique_ids, rows).")
      .def("apply_sparse_grad", &Table::apply_sparse_grad, nb::arg("unique_ids"), nb::arg("rows"),
           "ek_apply_sparse_grad.")
      .def("set_learning_rate", &Table::set_learning_rate, nb::arg("learning_rate"), "ek_set_learning_rate.")
      .def("migrate", &Table::migrate, nb::arg("device"), "ek_table_migrate.")
      .def("save", &Table::save, nb::arg("directory"), "ek_save.")
      .def("info", &Table::info, "ek_table_info: the table's description as JSON text.")
      .def("summary", &Table::summary, nb::arg("batch").none(), "ek_table_summary.");
}
