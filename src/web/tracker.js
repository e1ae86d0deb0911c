/*! Clicktrail browser tracker (MIT). API, options and how it works: examples/README.md. ES2017, hand-compacted (<3 KB gz) */
// prettier-ignore
((w,d,n)=>{
// q: this tab's queue of events {n,d,ts,v,s} and session stops {x,s,ts}; F: how many at its head are in flight
let me=d.currentScript,L=n.locks,J=JSON,C={api:me?new URL(me.src,location.href).origin:"",idleTimeout:18e5,batchSize:20,flushInterval:2e3},
q=[],pr=[],fl=0,F=0,KA=0,g=0,so=0,P,QK,I,V,O,ls,ss,rd,dd,bz,tm,ref,la,
get=k=>{try{return J.parse(ls.getItem(k))}catch(e){}},
set=(k,v)=>{try{v==null?ls.removeItem(k):ls.setItem(k,J.stringify(v))}catch(e){}},
W=m=>console.warn("clicktrail: "+m),
iso=t=>new Date(t||Date.now()).toISOString(),
rid=()=>Date.now().toString(36)+Math.random().toString(36).slice(2),
off=()=>{try{return!!(O||n.doNotTrack==1||w.doNotTrack==1||C.optOut&&C.optOut())}catch(e){return!0}},
sv=x=>{let a=x?q.slice(F):q;rd&&set(QK,a[0]?a:null)},
tok=()=>get(P+"t")||{},
fg=s=>{let t=tok();delete t[s];set(P+"t",t)},
bd=o=>J.stringify(Object.assign({key:C.key},o)),
url=p=>C.api+"/api/v1"+p,
ps=(p,o)=>(o=bd(o),KA=o.length<2e4,fetch(url(p),{method:"POST",body:o,keepalive:KA})),
ev=k=>x=>({name:x.n,data:x.d,ts:x.ts,visitor:x.v,session:k}),
tk=e=>{let f=async()=>{let t=tok(),r;if(!t[e.s]){r=await ps("/sessions",{ts:e.ts,visitor:e.v});if(r.status!=201)throw r;
r=(await r.json()).token;t=tok();t[e.s]=r;set(P+"t",t)}return t[e.s]};return L?L.request(P+"s",f):f()},
run=async()=>{for(;rd&&q[0]&&!dd&&n.onLine!=0&&!off();sv()){let e=q[0],k=tok()[e.s],i=0,r;
if(e.x){F=1;r=k&&await ps("/sessions/"+k+"/stop",{ts:e.ts});F=0;
if(r&&r.status>299&&!/^4(0[049]|10)/.test(r.status))throw r;fg(e.s);q[0]==e&&q.shift()}
else{k=k||await tk(e);if(q[0]!=e)continue;
while(q[i]&&i<(so?1:100)&&!q[i].x&&q[i].s==e.s)i++;
F=i;r=await ps("/events",{events:q.slice(0,i).map(ev(k))});F=0;
if(r.status==201)q.splice(0,i),fl=g=0,so&&so--;
else if(/^4(04|10)/.test(r.status)){fg(e.s);if(++g>3)throw r}
else if(r.status==400||r.status==413)i>1?so=i:(q.shift(),so&&so--,W("refused "+e.n));
else throw r}}},
pm=()=>(clearTimeout(tm),tm=0,bz||(bz=run().catch(r=>{F=0;
if(r&&(r.status==401||r.status==403))return dd=1,W("key refused");
let s=r&&r.headers&&+r.headers.get("Retry-After");
tm=setTimeout(pm,s>0?s*1e3:Math.min(3e5,1e3*2**++fl)*(.5+Math.random()))}).then(()=>(bz=0,q.length)))),
sc=x=>(x||q.length-F>=C.batchSize)&&!fl?pm():tm||(tm=setTimeout(pm,C.flushInterval)),
en=(S,t)=>q.push({x:1,s:S.i,ts:iso(t)}),
stop=t=>{let S=get(P+"s");S&&(set(P+"s"),en(S,t),sv(),sc(1))},
tr=(nm,da)=>{if(off())return;nm=String(nm);let s="",nw=Date.now(),S=get(P+"s"),x;try{da!=null&&(s=J.stringify(da)+"")}catch(e){s="!"}
if(!nm||nm.length>64||s&&(s[0]!="{"||new Blob([s]).size>8192))return W("invalid event "+nm);
if(!S||nw-S.a>C.idleTimeout)S&&en(S,S.a),S={i:rid()},x=1;
S.a=nw;set(P+"s",S);V||set(P+"v",V=rid());
q.length<5e3&&q.push({n:nm,d:s?J.parse(s):void 0,ts:iso(nw),v:V,s:S.i});sv();sc(x)},
hd=e=>{let p=e.type=="pagehide",t=tok(),i=F,j,x;if(!rd||!p&&d.visibilityState!="hidden")return;
if(n.onLine!=0&&n.sendBeacon&&!off()&&!dd){for(;(x=q[i])&&!x.x;i=j){for(j=i+1;q[j]&&j-i<C.batchSize&&!q[j].x&&q[j].s==x.s;)j++;
if(!n.sendBeacon(url("/events"),bd({events:q.slice(i,j).map(ev(t[x.s]))})))break}q.splice(F,i-F)}
sv(p&&KA)},
rc=async()=>{let h=L&&await L.query().catch(e=>0);h=h&&h.held.map(l=>l.name);
for(let k of Object.keys(ls||{})){let x=!k.indexOf(P+"q:")&&k!=QK&&get(k);
if(x&&!(h&&h.includes(P+"tab:"+k.slice(P.length+2))))q=q.concat(x),sv(),set(k)}pm()},
pv=()=>{let l=location,p=l.pathname+l.search;
if(p!=la)la=p,tr("pageview",{url:l.href,path:p,title:d.title,referrer:ref||void 0}),ref=l.href},
ck=e=>{let a=e.button<2&&e.target.closest&&e.target.closest("a[href]");a&&/^http/.test(a.protocol)&&a.host!=location.host&&tr("outbound",{url:a.href})},
on=(o,t,f)=>t.split(" ").map(t=>o.addEventListener(t,f,!0)),
init=o=>{Object.assign(C,o);let f=C.optOut,go=()=>{rd=1;q=(get(QK)||[]).concat(q);sv();rc()},
ho=()=>{try{ss.setItem(P+"tab",I)}catch(e){}QK=P+"q:"+I;
L?L.request(P+"tab:"+I,{ifAvailable:!0},l=>l?(go(),new Promise(f=>f)):(I=rid(),ho())).catch(e=>(L=0,go())):go()};
if(typeof f=="string")C.optOut=()=>w[f]&&w[f]();
if(P||!C.key)return;P="clicktrail:"+C.key+":";O=get(P+"o");V=get(P+"v");
try{I=ss.getItem(P+"tab")}catch(e){}I=I||rid();ho();
on(w,"online",()=>{fl=0;rd&&rc()});on(d,"visibilitychange",hd);on(w,"pagehide",hd);
pr.map(a=>a[0](...a[1]));pr=0;
C.outboundLinks&&on(d,"click auxclick",ck);
if(C.autoPageviews){ref=d.referrer;on(w,"popstate",()=>setTimeout(pv));
for(let m of["pushState","replaceState"]){let h=history[m];history[m]=function(){h.apply(this,arguments);setTimeout(pv)}}pv()}},
api=f=>(...a)=>P?f(...a):void pr.push([f,a]),o={};
try{ls=w.localStorage;ss=w.sessionStorage}catch(e){}
w.clicktrail={init,track:api(tr),flush:()=>P?pm():Promise.resolve(0),
identify:api(v=>{if(off())return;v=String(v).slice(0,128);V&&V!=v&&!get(P+"k")&&ps("/identify",{anonymous:V,visitor:v}).catch(W);set(P+"k",1);set(P+"v",V=v)}),
start:api(()=>{stop();off()||set(P+"s",{i:rid(),a:Date.now()})}),
stop:api(()=>stop()),
optOut:api((b=!0)=>{set(P+"o",O=b?1:null);b&&(q=[],[..."stvk"].map(k=>set(P+k)),V=0,sv())}),
setOptOut:f=>{C.optOut=f}};
for(let k in me?me.dataset:o){let v=me.dataset[k];v&&v!="false"&&(o[k]=v)}
init(o)})(window,document,navigator);
