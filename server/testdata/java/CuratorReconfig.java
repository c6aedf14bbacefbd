// CuratorReconfig drives Apache Curator's reconfig API and EnsembleTracker
// for TestReconfigCurator. It connects to the connection string in args[0]
// as the super user (digest super:admin) with Curator's defaults (the
// EnsembleTracker on), reads one command per line on stdin and answers each
// with lines ending in "end":
//
//   config                     getConfig().storingStatIn(s).usingWatcher(w).forEnsemble()
//                              -> "stat MZXID DATAVERSION" (hex mzxid), "line L" per config line
//   reconfig FROM [join SPEC | leave ID | member SPEC]...
//                              client.reconfig() with joining/leaving or withNewMembers,
//                              storingStatIn, fromConfig(FROM) -> "stat ..." and "line ..." of the
//                              reply, or "keeper CLASS" for a KeeperException
//   connstr                    "connstr S": CuratorZookeeperClient.getCurrentConnectionString();
//                              "tracked V": CuratorFramework.getCurrentConfig()'s version (hex)
//   write PATH DATA            create().orSetData() then getData() -> "read PATH DATA"
//   session                    "session ID PORT": the session (hex) and the server's client port
//
// The watcher set by config prints "watch TYPE PATH" when it fires; it is
// not part of any answer.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public class CuratorReconfig {
    static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    static void sayConfig(byte[] data, Stat st) {
        say("stat " + Long.toHexString(st.getMzxid()) + " " + st.getVersion());
        for (String l : new String(data, StandardCharsets.UTF_8).split("\n")) {
            say("line " + l);
        }
    }

    // remotePort is the port of the server zk is connected to, from its
    // toString ("remoteserver:/127.0.0.1:PORT ..."), "?" when not connected.
    static String remotePort(ZooKeeper zk) {
        String s = zk.toString();
        int i = s.indexOf("remoteserver:");
        if (i < 0) {
            return "?";
        }
        String r = s.substring(i + "remoteserver:".length()).split(" ")[0];
        return r.substring(r.lastIndexOf(':') + 1);
    }

    public static void main(String[] args) throws Exception {
        CuratorFramework client = CuratorFrameworkFactory.builder()
                .connectString(args[0])
                .sessionTimeoutMs(10000)
                .connectionTimeoutMs(10000)
                .retryPolicy(new RetryNTimes(200, 100))
                .authorization("digest", "super:admin".getBytes(StandardCharsets.UTF_8))
                .build();
        client.start();
        client.blockUntilConnected();
        Watcher watcher = e -> say("watch " + e.getType() + " " + e.getPath());
        say("ready");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            String[] f = line.trim().split(" ");
            try {
                switch (f[0]) {
                    case "config": {
                        Stat st = new Stat();
                        byte[] data = client.getConfig().storingStatIn(st).usingWatcher(watcher).forEnsemble();
                        sayConfig(data, st);
                        break;
                    }
                    case "reconfig": {
                        long from = Long.parseLong(f[1], 16); // "-1": any version
                        List<String> join = new ArrayList<>(), leave = new ArrayList<>(), members = new ArrayList<>();
                        for (int i = 2; i + 1 < f.length; i += 2) {
                            switch (f[i]) {
                                case "join": join.add(f[i + 1]); break;
                                case "leave": leave.add(f[i + 1]); break;
                                case "member": members.add(f[i + 1]); break;
                                default: throw new IllegalArgumentException("reconfig: " + f[i]);
                            }
                        }
                        Stat st = new Stat();
                        byte[] data;
                        if (!members.isEmpty()) {
                            data = client.reconfig().withNewMembers(members).storingStatIn(st).fromConfig(from).forEnsemble();
                        } else if (!join.isEmpty() && !leave.isEmpty()) {
                            data = client.reconfig().joining(join).leaving(leave).storingStatIn(st).fromConfig(from).forEnsemble();
                        } else if (!join.isEmpty()) {
                            data = client.reconfig().joining(join).storingStatIn(st).fromConfig(from).forEnsemble();
                        } else {
                            data = client.reconfig().leaving(leave).storingStatIn(st).fromConfig(from).forEnsemble();
                        }
                        sayConfig(data, st);
                        break;
                    }
                    case "connstr":
                        say("connstr " + client.getZookeeperClient().getCurrentConnectionString());
                        say("tracked " + Long.toHexString(client.getCurrentConfig().getVersion()));
                        break;
                    case "write": {
                        client.create().orSetData().forPath(f[1], f[2].getBytes(StandardCharsets.UTF_8));
                        byte[] got = client.getData().forPath(f[1]);
                        say("read " + f[1] + " " + new String(got, StandardCharsets.UTF_8));
                        break;
                    }
                    case "session": {
                        ZooKeeper zk = client.getZookeeperClient().getZooKeeper();
                        say("session " + Long.toHexString(zk.getSessionId()) + " " + remotePort(zk));
                        break;
                    }
                    default:
                        say("error unknown command " + f[0]);
                }
            } catch (KeeperException e) {
                say("keeper " + e.getClass().getSimpleName());
            } catch (Exception e) {
                say("error " + e);
            }
            say("end");
        }
        client.close();
    }
}
