// oneDNN 3x3 stride-1 convolutions for XLA:CPU, called through jax.ffi (swapjax/cpu/onednn.py).
//
// Three handlers: forward, gradient with respect to the input, gradient with respect to the
// kernel. Layouts are JAX's: input and output NHWC, kernel HWIO. Leading dimensions beyond the
// four of a convolution are models (vmap's "broadcast_all": every operand has them); each model
// is one oneDNN convolution on its own slice. Primitives are made once per shape and cached.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;
using Tag = memory::format_tag;
using DType = memory::data_type;

namespace {

// Process-lifetime objects, never destroyed: at exit, static destructors would otherwise run in
// an order that frees the engine before the primitives made on it.
dnnl::engine& Engine() {
  static auto* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

dnnl::stream& Stream() {
  static auto* stream = new dnnl::stream(Engine());
  return *stream;
}

// One convolution of a model: batch n, input h x w x c, o output channels, symmetric padding.
struct Shape {
  int64_t n, h, w, c, o, pad;
  int64_t ho() const { return h + 2 * pad - 2; }
  int64_t wo() const { return w + 2 * pad - 2; }
  bool operator<(const Shape& b) const {
    return std::tie(n, h, w, c, o, pad) < std::tie(b.n, b.h, b.w, b.c, b.o, b.pad);
  }
};

// A weights buffer in the layout a convolution chose and the reorder between it and JAX's HWIO
// (empty when that layout is HWIO itself).
struct Staged {
  memory buffer;
  dnnl::reorder reorder;
};

Staged Stage(const memory::desc& hwio, const memory::desc& layout, bool into_layout) {
  if (layout == hwio) return {};
  const memory::desc& from = into_layout ? hwio : layout;
  const memory::desc& to = into_layout ? layout : hwio;
  return {memory(layout, Engine()),
          dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), from, Engine(), to))};
}

struct Primitives {
  memory src, wei, dst;  // JAX's layouts; each call points them at its buffers
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights bwd_weights;
  Staged fwd_wei, data_wei, grad_wei;
  memory fwd_scratch, data_scratch, weights_scratch;  // each primitive's own work space
};

Primitives Make(const Shape& s) {
  memory::desc src({s.n, s.c, s.h, s.w}, DType::f32, Tag::nhwc);
  memory::desc wei({s.o, s.c, 3, 3}, DType::f32, Tag::hwio);
  memory::desc any_wei({s.o, s.c, 3, 3}, DType::f32, Tag::any);
  memory::desc dst({s.n, s.o, s.ho(), s.wo()}, DType::f32, Tag::nhwc);
  memory::dims strides = {1, 1}, pad = {s.pad, s.pad};
  auto algo = dnnl::algorithm::convolution_direct;
  // Each primitive owns its work space (used under the mutex): with oneDNN's global one, calls
  // from XLA's different threads failed now and then (status invalid_arguments).
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::convolution_forward::primitive_desc fwd(Engine(), dnnl::prop_kind::forward_training,
                                                algo, src, any_wei, dst, strides, pad, pad, attr);
  dnnl::convolution_backward_data::primitive_desc bwd_data(
    Engine(), algo, src, any_wei, dst, strides, pad, pad, fwd, attr);
  dnnl::convolution_backward_weights::primitive_desc bwd_weights(
    Engine(), algo, src, any_wei, dst, strides, pad, pad, fwd, attr);
  if (getenv("SWAPJAX_ONEDNN_DEBUG")) {
    fprintf(stderr, "onednn %s | %s | %s\n", fwd.impl_info_str(), bwd_data.impl_info_str(),
            bwd_weights.impl_info_str());
  }
  return {memory(src, Engine(), DNNL_MEMORY_NONE),
          memory(wei, Engine(), DNNL_MEMORY_NONE),
          memory(dst, Engine(), DNNL_MEMORY_NONE),
          dnnl::convolution_forward(fwd),
          dnnl::convolution_backward_data(bwd_data),
          dnnl::convolution_backward_weights(bwd_weights),
          Stage(wei, fwd.weights_desc(), true),
          Stage(wei, bwd_data.weights_desc(), true),
          Stage(wei, bwd_weights.diff_weights_desc(), false),
          memory(fwd.scratchpad_desc(), Engine()),
          memory(bwd_data.scratchpad_desc(), Engine()),
          memory(bwd_weights.scratchpad_desc(), Engine())};
}

// The weights `hwio` as the convolution wants them: reordered into its buffer, or as they are.
memory Into(Staged& staged, memory& hwio) {
  if (!staged.buffer) return hwio;
  staged.reorder.execute(Stream(), {{DNNL_ARG_FROM, hwio}, {DNNL_ARG_TO, staged.buffer}});
  return staged.buffer;
}

std::mutex mutex;  // one convolution at a time: each uses every core.

Primitives& Get(const Shape& s) {
  static auto* cache = new std::map<Shape, std::unique_ptr<Primitives>>;
  auto& entry = (*cache)[s];
  if (!entry) entry = std::make_unique<Primitives>(Make(s));
  return *entry;
}

enum class Kind { kForward, kInputGrad, kKernelGrad };

// x: the input, or its gradient (written); k: the kernel, or its gradient (written); y: the
// output, or its gradient. Shapes come from x's and k's dimensions; leading ones are models.
ffi::Error Run(Kind kind, ffi::Span<const int64_t> x_dims, ffi::Span<const int64_t> k_dims,
               int64_t pad, float* x, float* k, float* y) {
  size_t rank = x_dims.size();
  if (rank < 4 || k_dims.size() != rank) {
    return ffi::Error::InvalidArgument("onednn conv: operands need equal rank >= 4");
  }
  int64_t models = 1;
  for (size_t i = 0; i + 4 < rank; ++i) {
    if (x_dims[i] != k_dims[i]) return ffi::Error::InvalidArgument("onednn conv: model dims");
    models *= x_dims[i];
  }
  Shape s{x_dims[rank - 4], x_dims[rank - 3], x_dims[rank - 2], x_dims[rank - 1],
          k_dims[rank - 1], pad};
  if (k_dims[rank - 4] != 3 || k_dims[rank - 3] != 3 || k_dims[rank - 2] != s.c) {
    return ffi::Error::InvalidArgument("onednn conv: kernel must be 3x3xCxO");
  }
  std::lock_guard<std::mutex> lock(mutex);
  try {
    Primitives& p = Get(s);
    int64_t x_size = s.n * s.h * s.w * s.c, k_size = 9 * s.c * s.o;
    int64_t y_size = s.n * s.ho() * s.wo() * s.o;
    for (int64_t m = 0; m < models; ++m) {
      p.src.set_data_handle(x + m * x_size);
      p.wei.set_data_handle(k + m * k_size);
      p.dst.set_data_handle(y + m * y_size);
      if (kind == Kind::kForward) {
        p.fwd.execute(Stream(), {{DNNL_ARG_SRC, p.src},
                                 {DNNL_ARG_WEIGHTS, Into(p.fwd_wei, p.wei)},
                                 {DNNL_ARG_DST, p.dst},
                                 {DNNL_ARG_SCRATCHPAD, p.fwd_scratch}});
      } else if (kind == Kind::kInputGrad) {
        p.bwd_data.execute(Stream(), {{DNNL_ARG_DIFF_SRC, p.src},
                                      {DNNL_ARG_WEIGHTS, Into(p.data_wei, p.wei)},
                                      {DNNL_ARG_DIFF_DST, p.dst},
                                      {DNNL_ARG_SCRATCHPAD, p.data_scratch}});
      } else {
        memory grad = p.grad_wei.buffer ? p.grad_wei.buffer : p.wei;
        p.bwd_weights.execute(Stream(), {{DNNL_ARG_SRC, p.src},
                                         {DNNL_ARG_DIFF_WEIGHTS, grad},
                                         {DNNL_ARG_DIFF_DST, p.dst},
                                         {DNNL_ARG_SCRATCHPAD, p.weights_scratch}});
        if (p.grad_wei.buffer) {
          p.grad_wei.reorder.execute(Stream(), {{DNNL_ARG_FROM, grad}, {DNNL_ARG_TO, p.wei}});
        }
      }
    }
    Stream().wait();
  } catch (const dnnl::error& e) {
    return ffi::Error::Internal(std::string("onednn conv: ") + e.what() + " (status " +
                                std::to_string(static_cast<int>(e.status)) + ")");
  }
  return ffi::Error::Success();
}

}  // namespace

// y = conv(x, kernel)
ffi::Error ForwardImpl(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> kernel,
                       ffi::ResultBuffer<ffi::F32> y, int64_t pad) {
  return Run(Kind::kForward, x.dimensions(), kernel.dimensions(), pad, x.typed_data(),
             kernel.typed_data(), y->typed_data());
}

// dx = conv^T(dy, kernel); x's shape comes from the result.
ffi::Error InputGradImpl(ffi::Buffer<ffi::F32> dy, ffi::Buffer<ffi::F32> kernel,
                         ffi::ResultBuffer<ffi::F32> dx, int64_t pad) {
  return Run(Kind::kInputGrad, dx->dimensions(), kernel.dimensions(), pad, dx->typed_data(),
             kernel.typed_data(), dy.typed_data());
}

// dkernel = sum over the batch of x (x) dy.
ffi::Error KernelGradImpl(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> dy,
                          ffi::ResultBuffer<ffi::F32> dkernel, int64_t pad) {
  return Run(Kind::kKernelGrad, x.dimensions(), dkernel->dimensions(), pad, x.typed_data(),
             dkernel->typed_data(), dy.typed_data());
}

#define SWAPJAX_HANDLER(name, impl)                                       \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(name, impl,                               \
                                ffi::Ffi::Bind()                          \
                                  .Arg<ffi::Buffer<ffi::F32>>()           \
                                  .Arg<ffi::Buffer<ffi::F32>>()           \
                                  .Ret<ffi::Buffer<ffi::F32>>()           \
                                  .Attr<int64_t>("pad"));

SWAPJAX_HANDLER(SwapjaxOnednnConvForward, ForwardImpl)
SWAPJAX_HANDLER(SwapjaxOnednnConvInputGrad, InputGradImpl)
SWAPJAX_HANDLER(SwapjaxOnednnConvKernelGrad, KernelGradImpl)
