// TaeEdu.cs — the .NET (P/Invoke) binding of the tae-edu plugin's C ABI (include/tae_edu.h).
//
// Drop this file into the RM host project (or compile it with the host). It has no dependency
// beyond mscorlib/System. The contract it binds is docs/abi.md; the rules it follows:
//   * every export is Cdecl; requests and responses are UTF-8 bytes plus a length;
//     status codes are int (0 = OK); no bool and no by-value struct crosses the boundary;
//   * response buffers are plugin-owned and freed only with tae_edu_buffer_free;
//   * the out pointers (response, responseLen) are required: the binding always passes them as
//     `out` parameters. A NULL one is refused by the plugin with NullArgument (1) before anything
//     runs, and each non-NULL one is set to NULL/0 first, on every path;
//   * the host table holds function pointers made from delegates kept alive in static fields
//     for the whole process (the GC must never collect a delegate the plugin may call);
//   * every callback body is wrapped: no exception ever crosses into native code;
//   * callbacks run on the thread that called the export (keep UI work on that thread);
//   * never unload the library (the plugin is loaded once and kept for the process).
using System;
using System.Runtime.InteropServices;
using System.Text;

namespace TaeEdu
{
    /// <summary>Status codes of the ABI (stable values, see docs/abi.md).</summary>
    public enum TaeEduStatus
    {
        Ok = 0,
        NullArgument = 1,
        InvalidUtf8 = 2,
        InvalidRequest = 3,
        InvalidHostTable = 4,
        Reentrant = 5,
        Panic = 6,
        HostError = 7,
        Cancelled = 8,
        AuthFailed = 9,
        PermissionDenied = 10,
        TaeError = 11,
        InvalidConfig = 12,
        RequestTooLarge = 13,
        Busy = 14,
        Internal = 99,
    }

    /// <summary>The names of the host methods the plugin calls through IHostServices.Call
    /// (docs/abi.md, "Host methods"). A host answers a method it does not implement by throwing
    /// <c>HostServiceException("unknown method")</c>.</summary>
    public static class HostMethods
    {
        public const string UserCurrent = "user.current";
        public const string UserHasPermission = "user.has_permission";
        public const string ParamsGet = "params.get";
        public const string ContractsGet = "contracts.get";
        public const string ContractsFind = "contracts.find";
        public const string ContractsSetStatus = "contracts.set_status";
        public const string FileRead = "file.read";
        public const string ReportRender = "report.render";
        public const string UiAuthenticate = "ui.authenticate";
        public const string UiAskCpf = "ui.ask_cpf";
        public const string RecordsGet = "records.get";
        public const string RecordsQuery = "records.query";
        /// <summary>Upsert of records, durable before answering. May carry <c>lease_token</c>:
        /// then refuse the whole write (throw, or answer <c>{"message", "code": "lease_lost",
        /// "contracts": [...]}</c>) when the token no longer holds any record's contract.</summary>
        public const string RecordsPut = "records.put";
        public const string RecordsStoreFile = "records.store_file";
        /// <summary>Leases on contracts in the RM database, shared by every application server
        /// (docs/abi.md, "Leases"): in one transaction, grant the contracts nobody holds live
        /// (or the same run holds) and answer the others with their holder, since and expiry.
        /// Never wait. An empty contract list changes nothing (the plugin probes with it).</summary>
        public const string LeasesAcquire = "leases.acquire";
        /// <summary>Extend the token's listed leases by ttl_secs; answer the others as lost.</summary>
        public const string LeasesRenew = "leases.renew";
        /// <summary>Drop the token's leases: all without <c>contracts</c>, else the listed ones.</summary>
        public const string LeasesRelease = "leases.release";
        /// <summary>The answer of a host that does not implement a method (as the message of
        /// the failure). Without the three lease methods the plugin coordinates only the runs
        /// of its own process.</summary>
        public const string UnknownMethod = "unknown method";
    }

    /// <summary>Thrown by a host service to answer a host call with a failure: the plugin
    /// receives <c>{"message": Message}</c>, or <see cref="ErrorJson"/> when given (a failure
    /// with more fields, e.g. records.put's <c>{"message", "code": "lease_lost", "contracts"}</c>).</summary>
    public class HostServiceException : Exception
    {
        public HostServiceException(string message) : base(message) { }

        /// <param name="errorJson">The whole JSON object answered with the failure; it should
        /// carry "message" too.</param>
        public HostServiceException(string message, string errorJson) : base(message) { ErrorJson = errorJson; }

        public string ErrorJson { get; private set; }
    }

    /// <summary>What the host offers the plugin (docs/abi.md, "Host methods").</summary>
    public interface IHostServices
    {
        /// <summary>Answers one host method. The response is JSON bytes, or raw bytes for
        /// file.read and report.render. Throw HostServiceException to answer a failure.</summary>
        byte[] Call(string method, byte[] request);

        /// <summary>One log line (level 1 error … 5 trace), already free of secrets.</summary>
        void Log(int level, string message);

        /// <summary>Batch progress; return true to ask the plugin to cancel.</summary>
        bool Progress(uint done, uint total, string detailJson);
    }

    /// <summary>The host callback table, laid out exactly as TaeEduHost in tae_edu.h.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct TaeEduHost
    {
        public uint AbiVersion;
        public uint StructSize;
        public IntPtr Ctx;
        public IntPtr Call;
        public IntPtr FreeBuffer;
        public IntPtr Log;
        public IntPtr Progress;
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    public delegate int HostCallFn(IntPtr ctx, IntPtr method, UIntPtr methodLen, IntPtr request,
                                   UIntPtr requestLen, out IntPtr response, out UIntPtr responseLen);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    public delegate void HostFreeBufferFn(IntPtr ctx, IntPtr buffer, UIntPtr length);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    public delegate void HostLogFn(IntPtr ctx, int level, IntPtr message, UIntPtr length);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    public delegate int HostProgressFn(IntPtr ctx, uint done, uint total, IntPtr detail, UIntPtr length);

    /// <summary>The raw exports. Prefer <see cref="TaeEduPlugin"/>.</summary>
    /// <remarks>The JSON exports answer through <c>response</c>/<c>responseLen</c>, which are
    /// required: declared as <c>out</c> parameters they are never NULL here (a NULL one would be
    /// refused with NullArgument before anything runs). Both are set to NULL/0 first, then to
    /// the response on success and on error; free it with <see cref="BufferFree"/>.</remarks>
    public static class NativeMethods
    {
        // Mono and .NET resolve "tae_edu" to libtae_edu.so / tae_edu.dll on the library path.
        public const string Library = "tae_edu";

        [DllImport(Library, EntryPoint = "tae_edu_abi_version", CallingConvention = CallingConvention.Cdecl)]
        public static extern uint AbiVersion();

        [DllImport(Library, EntryPoint = "tae_edu_configure", CallingConvention = CallingConvention.Cdecl)]
        public static extern int Configure(ref TaeEduHost host, byte[] request, UIntPtr requestLen,
                                           out IntPtr response, out UIntPtr responseLen);

        [DllImport(Library, EntryPoint = "tae_edu_execute", CallingConvention = CallingConvention.Cdecl)]
        public static extern int Execute(ref TaeEduHost host, byte[] request, UIntPtr requestLen,
                                         out IntPtr response, out UIntPtr responseLen);

        [DllImport(Library, EntryPoint = "tae_edu_attachment_list", CallingConvention = CallingConvention.Cdecl)]
        public static extern int AttachmentList(ref TaeEduHost host, byte[] request, UIntPtr requestLen,
                                                out IntPtr response, out UIntPtr responseLen);

        [DllImport(Library, EntryPoint = "tae_edu_buffer_free", CallingConvention = CallingConvention.Cdecl)]
        public static extern void BufferFree(IntPtr buffer, UIntPtr length);

        [DllImport(Library, EntryPoint = "tae_edu_session_end", CallingConvention = CallingConvention.Cdecl)]
        public static extern int SessionEnd(byte[] sessionId, UIntPtr length);

        [DllImport(Library, EntryPoint = "tae_edu_shutdown", CallingConvention = CallingConvention.Cdecl)]
        public static extern int Shutdown();
    }

    /// <summary>The answer of one export: its status and its response JSON.</summary>
    public sealed class TaeEduResponse
    {
        public TaeEduResponse(int status, string json) { Status = status; Json = json; }
        public int Status { get; private set; }
        public string Json { get; private set; }
        public bool Ok { get { return Status == (int)TaeEduStatus.Ok; } }
    }

    /// <summary>
    /// An idiomatic wrapper: one instance per host-services object. Dispose releases the GC
    /// handle of the services; it never unloads the native library.
    /// </summary>
    public sealed class TaeEduPlugin : IDisposable
    {
        public const uint SupportedAbiVersion = 1;

        // Kept in static fields for the whole process so the GC never collects them.
        private static readonly HostCallFn CallDelegate = HostCall;
        private static readonly HostFreeBufferFn FreeBufferDelegate = HostFreeBuffer;
        private static readonly HostLogFn LogDelegate = HostLog;
        private static readonly HostProgressFn ProgressDelegate = HostProgress;

        private GCHandle _services;
        private TaeEduHost _host;
        private bool _disposed;

        public TaeEduPlugin(IHostServices services)
        {
            if (services == null) throw new ArgumentNullException("services");
            uint abi = NativeMethods.AbiVersion();
            if (abi != SupportedAbiVersion)
                throw new InvalidOperationException("tae_edu ABI " + abi + " is not the supported " + SupportedAbiVersion);
            _services = GCHandle.Alloc(services);
            _host = new TaeEduHost
            {
                AbiVersion = SupportedAbiVersion,
                StructSize = (uint)Marshal.SizeOf(typeof(TaeEduHost)),
                Ctx = GCHandle.ToIntPtr(_services),
                Call = Marshal.GetFunctionPointerForDelegate(CallDelegate),
                FreeBuffer = Marshal.GetFunctionPointerForDelegate(FreeBufferDelegate),
                Log = Marshal.GetFunctionPointerForDelegate(LogDelegate),
                Progress = Marshal.GetFunctionPointerForDelegate(ProgressDelegate),
            };
        }

        public TaeEduResponse Configure(string requestJson) { return Invoke(NativeMethods.Configure, requestJson); }
        public TaeEduResponse Execute(string requestJson) { return Invoke(NativeMethods.Execute, requestJson); }
        public TaeEduResponse AttachmentList(string requestJson) { return Invoke(NativeMethods.AttachmentList, requestJson); }

        /// <summary>Drops one RM session's cached TAE token (call when the RM session closes).</summary>
        public static int SessionEnd(string sessionId)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(sessionId ?? "");
            return NativeMethods.SessionEnd(bytes, (UIntPtr)bytes.Length);
        }

        /// <summary>Drops every cached token (each call's runtime ends with the call); idempotent.</summary>
        public static int Shutdown() { return NativeMethods.Shutdown(); }

        private delegate int Export(ref TaeEduHost host, byte[] request, UIntPtr requestLen,
                                    out IntPtr response, out UIntPtr responseLen);

        private TaeEduResponse Invoke(Export export, string requestJson)
        {
            if (_disposed) throw new ObjectDisposedException("TaeEduPlugin");
            return InvokeRaw(export, Encoding.UTF8.GetBytes(requestJson ?? ""));
        }

        /// <summary>Sends raw request bytes (for tests of the plugin's input checks).</summary>
        public TaeEduResponse ExecuteRaw(byte[] request) { return InvokeRaw(NativeMethods.Execute, request); }

        private TaeEduResponse InvokeRaw(Export export, byte[] request)
        {
            IntPtr response;
            UIntPtr responseLen;
            int status = export(ref _host, request, (UIntPtr)request.Length, out response, out responseLen);
            string json = "";
            if (response != IntPtr.Zero)
            {
                try
                {
                    int length = checked((int)(ulong)responseLen);
                    byte[] bytes = new byte[length];
                    Marshal.Copy(response, bytes, 0, length);
                    json = Encoding.UTF8.GetString(bytes);
                }
                finally
                {
                    NativeMethods.BufferFree(response, responseLen);
                }
            }
            return new TaeEduResponse(status, json);
        }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            if (_services.IsAllocated) _services.Free();
        }

        private static IHostServices Services(IntPtr ctx)
        {
            return (IHostServices)GCHandle.FromIntPtr(ctx).Target;
        }

        private static string Utf8(IntPtr pointer, UIntPtr length)
        {
            int n = checked((int)(ulong)length);
            if (pointer == IntPtr.Zero || n == 0) return "";
            byte[] bytes = new byte[n];
            Marshal.Copy(pointer, bytes, 0, n);
            return Encoding.UTF8.GetString(bytes);
        }

        private static byte[] Bytes(IntPtr pointer, UIntPtr length)
        {
            int n = checked((int)(ulong)length);
            byte[] bytes = new byte[n];
            if (pointer != IntPtr.Zero && n > 0) Marshal.Copy(pointer, bytes, 0, n);
            return bytes;
        }

        private static IntPtr ToHostBuffer(byte[] bytes, out UIntPtr length)
        {
            IntPtr buffer = Marshal.AllocHGlobal(Math.Max(bytes.Length, 1));
            if (bytes.Length > 0) Marshal.Copy(bytes, 0, buffer, bytes.Length);
            length = (UIntPtr)bytes.Length;
            return buffer;
        }

        private static string JsonString(string text)
        {
            var sb = new StringBuilder("\"");
            foreach (char c in text ?? "")
            {
                switch (c)
                {
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    default:
                        if (c < 0x20) sb.AppendFormat("\\u{0:x4}", (int)c); else sb.Append(c);
                        break;
                }
            }
            return sb.Append('"').ToString();
        }

        private static int HostCall(IntPtr ctx, IntPtr method, UIntPtr methodLen, IntPtr request,
                                    UIntPtr requestLen, out IntPtr response, out UIntPtr responseLen)
        {
            response = IntPtr.Zero;
            responseLen = UIntPtr.Zero;
            try
            {
                byte[] answer = Services(ctx).Call(Utf8(method, methodLen), Bytes(request, requestLen));
                response = ToHostBuffer(answer ?? new byte[0], out responseLen);
                return 0;
            }
            catch (Exception e)
            {
                // No exception may cross into native code: answer a JSON error instead.
                try
                {
                    var service = e as HostServiceException;
                    string body = service != null && service.ErrorJson != null
                        ? service.ErrorJson
                        : "{\"message\":" + JsonString(e.Message) + "}";
                    byte[] error = Encoding.UTF8.GetBytes(body);
                    response = ToHostBuffer(error, out responseLen);
                }
                catch
                {
                    response = IntPtr.Zero;
                    responseLen = UIntPtr.Zero;
                }
                return 1;
            }
        }

        private static void HostFreeBuffer(IntPtr ctx, IntPtr buffer, UIntPtr length)
        {
            try
            {
                if (buffer != IntPtr.Zero) Marshal.FreeHGlobal(buffer);
            }
            catch
            {
                // Never throw into native code.
            }
        }

        private static void HostLog(IntPtr ctx, int level, IntPtr message, UIntPtr length)
        {
            try
            {
                Services(ctx).Log(level, Utf8(message, length));
            }
            catch
            {
                // A failing logger must not take the host down.
            }
        }

        private static int HostProgress(IntPtr ctx, uint done, uint total, IntPtr detail, UIntPtr length)
        {
            try
            {
                return Services(ctx).Progress(done, total, Utf8(detail, length)) ? 1 : 0;
            }
            catch
            {
                return 0;
            }
        }
    }
}
