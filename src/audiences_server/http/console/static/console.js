var de,y,Le,wt,K,Te,Oe,Fe,He,ye,ve,ge,Ct,oe={},Me=[],St=/acit|ex(?:s|g|n|p|$)|rph|grid|ows|mnc|ntw|ine[ch]|zoo|^ord|itera/i,ue=Array.isArray;function H(e,t){for(var n in t)e[n]=t[n];return e}function ke(e){e&&e.parentNode&&e.parentNode.removeChild(e)}function pe(e,t,n){var r,i,o,a={};for(o in t)o=="key"?r=t[o]:o=="ref"?i=t[o]:a[o]=t[o];if(arguments.length>2&&(a.children=arguments.length>3?de.call(arguments,2):n),typeof e=="function"&&e.defaultProps!=null)for(o in e.defaultProps)a[o]===void 0&&(a[o]=e.defaultProps[o]);return le(e,a,r,i,null)}function le(e,t,n,r,i){var o={type:e,props:t,key:n,ref:r,__k:null,__:null,__b:0,__e:null,__c:null,constructor:void 0,__v:i??++Le,__i:-1,__u:0};return i==null&&y.vnode!=null&&y.vnode(o),o}function fe(e){return e.children}function ne(e,t){this.props=e,this.context=t}function Y(e,t){if(t==null)return e.__?Y(e.__,e.__i+1):null;for(var n;t<e.__k.length;t++)if((n=e.__k[t])!=null&&n.__e!=null)return n.__e;return typeof e.type=="function"?Y(e):null}function je(e){var t,n;if((e=e.__)!=null&&e.__c!=null){for(e.__e=e.__c.base=null,t=0;t<e.__k.length;t++)if((n=e.__k[t])!=null&&n.__e!=null){e.__e=e.__c.base=n.__e;break}return je(e)}}function ze(e){(!e.__d&&(e.__d=!0)&&K.push(e)&&!ce.__r++||Te!==y.debounceRendering)&&((Te=y.debounceRendering)||Oe)(ce)}function ce(){for(var e,t,n,r,i,o,a,d=1;K.length;)K.length>d&&K.sort(Fe),e=K.shift(),d=K.length,e.__d&&(n=void 0,i=(r=(t=e).__v).__e,o=[],a=[],t.__P&&((n=H({},r)).__v=r.__v+1,y.vnode&&y.vnode(n),xe(t.__P,n,r,t.__n,t.__P.namespaceURI,32&r.__u?[i]:null,o,i??Y(r),!!(32&r.__u),a),n.__v=r.__v,n.__.__k[n.__i]=n,Ve(o,n,a),n.__e!=i&&je(n)));ce.__r=0}function Be(e,t,n,r,i,o,a,d,l,u,_){var s,m,p,f,g,h,v=r&&r.__k||Me,b=t.length;for(l=Et(n,t,v,l,b),s=0;s<b;s++)(p=n.__k[s])!=null&&(m=p.__i===-1?oe:v[p.__i]||oe,p.__i=s,h=xe(e,p,m,i,o,a,d,l,u,_),f=p.__e,p.ref&&m.ref!=p.ref&&(m.ref&&we(m.ref,null,p),_.push(p.ref,p.__c||f,p)),g==null&&f!=null&&(g=f),4&p.__u||m.__k===p.__k?l=We(p,l,e):typeof p.type=="function"&&h!==void 0?l=h:f&&(l=f.nextSibling),p.__u&=-7);return n.__e=g,l}function Et(e,t,n,r,i){var o,a,d,l,u,_=n.length,s=_,m=0;for(e.__k=new Array(i),o=0;o<i;o++)(a=t[o])!=null&&typeof a!="boolean"&&typeof a!="function"?(l=o+m,(a=e.__k[o]=typeof a=="string"||typeof a=="number"||typeof a=="bigint"||a.constructor==String?le(null,a,null,null,null):ue(a)?le(fe,{children:a},null,null,null):a.constructor===void 0&&a.__b>0?le(a.type,a.props,a.key,a.ref?a.ref:null,a.__v):a).__=e,a.__b=e.__b+1,d=null,(u=a.__i=It(a,n,l,s))!==-1&&(s--,(d=n[u])&&(d.__u|=2)),d==null||d.__v===null?(u==-1&&(i>_?m--:i<_&&m++),typeof a.type!="function"&&(a.__u|=4)):u!=l&&(u==l-1?m--:u==l+1?m++:(u>l?m--:m++,a.__u|=4))):e.__k[o]=null;if(s)for(o=0;o<_;o++)(d=n[o])!=null&&(2&d.__u)==0&&(d.__e==r&&(r=Y(d)),Je(d,d));return r}function We(e,t,n){var r,i;if(typeof e.type=="function"){for(r=e.__k,i=0;r&&i<r.length;i++)r[i]&&(r[i].__=e,t=We(r[i],t,n));return t}e.__e!=t&&(t&&e.type&&!n.contains(t)&&(t=Y(e)),n.insertBefore(e.__e,t||null),t=e.__e);do t=t&&t.nextSibling;while(t!=null&&t.nodeType==8);return t}function It(e,t,n,r){var i,o,a=e.key,d=e.type,l=t[n];if(l===null&&e.key==null||l&&a==l.key&&d===l.type&&(2&l.__u)==0)return n;if(r>(l!=null&&(2&l.__u)==0?1:0))for(i=n-1,o=n+1;i>=0||o<t.length;){if(i>=0){if((l=t[i])&&(2&l.__u)==0&&a==l.key&&d===l.type)return i;i--}if(o<t.length){if((l=t[o])&&(2&l.__u)==0&&a==l.key&&d===l.type)return o;o++}}return-1}function Ue(e,t,n){t[0]=="-"?e.setProperty(t,n??""):e[t]=n==null?"":typeof n!="number"||St.test(t)?n:n+"px"}function se(e,t,n,r,i){var o;e:if(t=="style")if(typeof n=="string")e.style.cssText=n;else{if(typeof r=="string"&&(e.style.cssText=r=""),r)for(t in r)n&&t in n||Ue(e.style,t,"");if(n)for(t in n)r&&n[t]===r[t]||Ue(e.style,t,n[t])}else if(t[0]=="o"&&t[1]=="n")o=t!=(t=t.replace(He,"$1")),t=t.toLowerCase()in e||t=="onFocusOut"||t=="onFocusIn"?t.toLowerCase().slice(2):t.slice(2),e.l||(e.l={}),e.l[t+o]=n,n?r?n.t=r.t:(n.t=ye,e.addEventListener(t,o?ge:ve,o)):e.removeEventListener(t,o?ge:ve,o);else{if(i=="http://www.w3.org/2000/svg")t=t.replace(/xlink(H|:h)/,"h").replace(/sName$/,"s");else if(t!="width"&&t!="height"&&t!="href"&&t!="list"&&t!="form"&&t!="tabIndex"&&t!="download"&&t!="rowSpan"&&t!="colSpan"&&t!="role"&&t!="popover"&&t in e)try{e[t]=n??"";break e}catch{}typeof n=="function"||(n==null||n===!1&&t[4]!="-"?e.removeAttribute(t):e.setAttribute(t,t=="popover"&&n==1?"":n))}}function Re(e){return function(t){if(this.l){var n=this.l[t.type+e];if(t.u==null)t.u=ye++;else if(t.u<n.t)return;return n(y.event?y.event(t):t)}}}function xe(e,t,n,r,i,o,a,d,l,u){var _,s,m,p,f,g,h,v,b,q,R,j,L,O,B,F,W,D=t.type;if(t.constructor!==void 0)return null;128&n.__u&&(l=!!(32&n.__u),o=[d=t.__e=n.__e]),(_=y.__b)&&_(t);e:if(typeof D=="function")try{if(v=t.props,b="prototype"in D&&D.prototype.render,q=(_=D.contextType)&&r[_.__c],R=_?q?q.props.value:_.__:r,n.__c?h=(s=t.__c=n.__c).__=s.__E:(b?t.__c=s=new D(v,R):(t.__c=s=new ne(v,R),s.constructor=D,s.render=Pt),q&&q.sub(s),s.props=v,s.state||(s.state={}),s.context=R,s.__n=r,m=s.__d=!0,s.__h=[],s._sb=[]),b&&s.__s==null&&(s.__s=s.state),b&&D.getDerivedStateFromProps!=null&&(s.__s==s.state&&(s.__s=H({},s.__s)),H(s.__s,D.getDerivedStateFromProps(v,s.__s))),p=s.props,f=s.state,s.__v=t,m)b&&D.getDerivedStateFromProps==null&&s.componentWillMount!=null&&s.componentWillMount(),b&&s.componentDidMount!=null&&s.__h.push(s.componentDidMount);else{if(b&&D.getDerivedStateFromProps==null&&v!==p&&s.componentWillReceiveProps!=null&&s.componentWillReceiveProps(v,R),!s.__e&&(s.shouldComponentUpdate!=null&&s.shouldComponentUpdate(v,s.__s,R)===!1||t.__v==n.__v)){for(t.__v!=n.__v&&(s.props=v,s.state=s.__s,s.__d=!1),t.__e=n.__e,t.__k=n.__k,t.__k.some(function(J){J&&(J.__=t)}),j=0;j<s._sb.length;j++)s.__h.push(s._sb[j]);s._sb=[],s.__h.length&&a.push(s);break e}s.componentWillUpdate!=null&&s.componentWillUpdate(v,s.__s,R),b&&s.componentDidUpdate!=null&&s.__h.push(function(){s.componentDidUpdate(p,f,g)})}if(s.context=R,s.props=v,s.__P=e,s.__e=!1,L=y.__r,O=0,b){for(s.state=s.__s,s.__d=!1,L&&L(t),_=s.render(s.props,s.state,s.context),B=0;B<s._sb.length;B++)s.__h.push(s._sb[B]);s._sb=[]}else do s.__d=!1,L&&L(t),_=s.render(s.props,s.state,s.context),s.state=s.__s;while(s.__d&&++O<25);s.state=s.__s,s.getChildContext!=null&&(r=H(H({},r),s.getChildContext())),b&&!m&&s.getSnapshotBeforeUpdate!=null&&(g=s.getSnapshotBeforeUpdate(p,f)),F=_,_!=null&&_.type===fe&&_.key==null&&(F=qe(_.props.children)),d=Be(e,ue(F)?F:[F],t,n,r,i,o,a,d,l,u),s.base=t.__e,t.__u&=-161,s.__h.length&&a.push(s),h&&(s.__E=s.__=null)}catch(J){if(t.__v=null,l||o!=null)if(J.then){for(t.__u|=l?160:128;d&&d.nodeType==8&&d.nextSibling;)d=d.nextSibling;o[o.indexOf(d)]=null,t.__e=d}else for(W=o.length;W--;)ke(o[W]);else t.__e=n.__e,t.__k=n.__k;y.__e(J,t,n)}else o==null&&t.__v==n.__v?(t.__k=n.__k,t.__e=n.__e):d=t.__e=Nt(n.__e,t,n,r,i,o,a,l,u);return(_=y.diffed)&&_(t),128&t.__u?void 0:d}function Ve(e,t,n){for(var r=0;r<n.length;r++)we(n[r],n[++r],n[++r]);y.__c&&y.__c(t,e),e.some(function(i){try{e=i.__h,i.__h=[],e.some(function(o){o.call(i)})}catch(o){y.__e(o,i.__v)}})}function qe(e){return typeof e!="object"||e==null?e:ue(e)?e.map(qe):H({},e)}function Nt(e,t,n,r,i,o,a,d,l){var u,_,s,m,p,f,g,h=n.props,v=t.props,b=t.type;if(b=="svg"?i="http://www.w3.org/2000/svg":b=="math"?i="http://www.w3.org/1998/Math/MathML":i||(i="http://www.w3.org/1999/xhtml"),o!=null){for(u=0;u<o.length;u++)if((p=o[u])&&"setAttribute"in p==!!b&&(b?p.localName==b:p.nodeType==3)){e=p,o[u]=null;break}}if(e==null){if(b==null)return document.createTextNode(v);e=document.createElementNS(i,b,v.is&&v),d&&(y.__m&&y.__m(t,o),d=!1),o=null}if(b===null)h===v||d&&e.data===v||(e.data=v);else{if(o=o&&de.call(e.childNodes),h=n.props||oe,!d&&o!=null)for(h={},u=0;u<e.attributes.length;u++)h[(p=e.attributes[u]).name]=p.value;for(u in h)if(p=h[u],u!="children"){if(u=="dangerouslySetInnerHTML")s=p;else if(!(u in v)){if(u=="value"&&"defaultValue"in v||u=="checked"&&"defaultChecked"in v)continue;se(e,u,null,p,i)}}for(u in v)p=v[u],u=="children"?m=p:u=="dangerouslySetInnerHTML"?_=p:u=="value"?f=p:u=="checked"?g=p:d&&typeof p!="function"||h[u]===p||se(e,u,p,h[u],i);if(_)d||s&&(_.__html===s.__html||_.__html===e.innerHTML)||(e.innerHTML=_.__html),t.__k=[];else if(s&&(e.innerHTML=""),Be(t.type==="template"?e.content:e,ue(m)?m:[m],t,n,r,b=="foreignObject"?"http://www.w3.org/1999/xhtml":i,o,a,o?o[0]:n.__k&&Y(n,0),d,l),o!=null)for(u=o.length;u--;)ke(o[u]);d||(u="value",b=="progress"&&f==null?e.removeAttribute("value"):f!==void 0&&(f!==e[u]||b=="progress"&&!f||b=="option"&&f!==h[u])&&se(e,u,f,h[u],i),u="checked",g!==void 0&&g!==e[u]&&se(e,u,g,h[u],i))}return e}function we(e,t,n){try{if(typeof e=="function"){var r=typeof e.__u=="function";r&&e.__u(),r&&t==null||(e.__u=e(t))}else e.current=t}catch(i){y.__e(i,n)}}function Je(e,t,n){var r,i;if(y.unmount&&y.unmount(e),(r=e.ref)&&(r.current&&r.current!==e.__e||we(r,null,t)),(r=e.__c)!=null){if(r.componentWillUnmount)try{r.componentWillUnmount()}catch(o){y.__e(o,t)}r.base=r.__P=null}if(r=e.__k)for(i=0;i<r.length;i++)r[i]&&Je(r[i],t,n||typeof e.type!="function");n||ke(e.__e),e.__c=e.__=e.__e=void 0}function Pt(e,t,n){return this.constructor(e,n)}function Ce(e,t,n){var r,i,o,a;t==document&&(t=document.documentElement),y.__&&y.__(e,t),i=(r=typeof n=="function")?null:n&&n.__k||t.__k,o=[],a=[],xe(t,e=(!r&&n||t).__k=pe(fe,null,[e]),i||oe,oe,t.namespaceURI,!r&&n?[n]:i?null:t.firstChild?de.call(t.childNodes):null,o,!r&&n?n:i?i.__e:t.firstChild,r,a),Ve(o,e,a)}de=Me.slice,y={__e:function(e,t,n,r){for(var i,o,a;t=t.__;)if((i=t.__c)&&!i.__)try{if((o=i.constructor)&&o.getDerivedStateFromError!=null&&(i.setState(o.getDerivedStateFromError(e)),a=i.__d),i.componentDidCatch!=null&&(i.componentDidCatch(e,r||{}),a=i.__d),a)return i.__E=i}catch(d){e=d}throw e}},Le=0,wt=function(e){return e!=null&&e.constructor==null},ne.prototype.setState=function(e,t){var n;n=this.__s!=null&&this.__s!==this.state?this.__s:this.__s=H({},this.state),typeof e=="function"&&(e=e(H({},n),this.props)),e&&H(n,e),e!=null&&this.__v&&(t&&this._sb.push(t),ze(this))},ne.prototype.forceUpdate=function(e){this.__v&&(this.__e=!0,e&&this.__h.push(e),ze(this))},ne.prototype.render=fe,K=[],Oe=typeof Promise=="function"?Promise.prototype.then.bind(Promise.resolve()):setTimeout,Fe=function(e,t){return e.__v.__b-t.__v.__b},ce.__r=0,He=/(PointerCapture)$|Capture$/i,ye=0,ve=Re(!1),ge=Re(!0),Ct=0;var re,w,Se,Ke,me=0,nt=[],C=y,Ge=C.__b,Ze=C.__r,Ye=C.diffed,Qe=C.__c,Xe=C.unmount,et=C.__;function Ie(e,t){C.__h&&C.__h(w,e,me||t),me=0;var n=w.__H||(w.__H={__:[],__h:[]});return e>=n.__.length&&n.__.push({}),n.__[e]}function $(e){return me=1,Dt(rt,e)}function Dt(e,t,n){var r=Ie(re++,2);if(r.t=e,!r.__c&&(r.__=[n?n(t):rt(void 0,t),function(d){var l=r.__N?r.__N[0]:r.__[0],u=r.t(l,d);l!==u&&(r.__N=[u,r.__[1]],r.__c.setState({}))}],r.__c=w,!w.__f)){var i=function(d,l,u){if(!r.__c.__H)return!0;var _=r.__c.__H.__.filter(function(m){return!!m.__c});if(_.every(function(m){return!m.__N}))return!o||o.call(this,d,l,u);var s=r.__c.props!==d;return _.forEach(function(m){if(m.__N){var p=m.__[0];m.__=m.__N,m.__N=void 0,p!==m.__[0]&&(s=!0)}}),o&&o.call(this,d,l,u)||s};w.__f=!0;var o=w.shouldComponentUpdate,a=w.componentWillUpdate;w.componentWillUpdate=function(d,l,u){if(this.__e){var _=o;o=void 0,i(d,l,u),o=_}a&&a.call(this,d,l,u)},w.shouldComponentUpdate=i}return r.__N||r.__}function E(e,t){var n=Ie(re++,3);!C.__s&&ot(n.__H,t)&&(n.__=e,n.u=t,w.__H.__h.push(n))}function M(e){return me=5,At(function(){return{current:e}},[])}function At(e,t){var n=Ie(re++,7);return ot(n.__H,t)&&(n.__=e(),n.__H=t,n.__h=e),n.__}function Tt(){for(var e;e=nt.shift();)if(e.__P&&e.__H)try{e.__H.__h.forEach(_e),e.__H.__h.forEach(Ee),e.__H.__h=[]}catch(t){e.__H.__h=[],C.__e(t,e.__v)}}C.__b=function(e){w=null,Ge&&Ge(e)},C.__=function(e,t){e&&t.__k&&t.__k.__m&&(e.__m=t.__k.__m),et&&et(e,t)},C.__r=function(e){Ze&&Ze(e),re=0;var t=(w=e.__c).__H;t&&(Se===w?(t.__h=[],w.__h=[],t.__.forEach(function(n){n.__N&&(n.__=n.__N),n.u=n.__N=void 0})):(t.__h.forEach(_e),t.__h.forEach(Ee),t.__h=[],re=0)),Se=w},C.diffed=function(e){Ye&&Ye(e);var t=e.__c;t&&t.__H&&(t.__H.__h.length&&(nt.push(t)!==1&&Ke===C.requestAnimationFrame||((Ke=C.requestAnimationFrame)||zt)(Tt)),t.__H.__.forEach(function(n){n.u&&(n.__H=n.u),n.u=void 0})),Se=w=null},C.__c=function(e,t){t.some(function(n){try{n.__h.forEach(_e),n.__h=n.__h.filter(function(r){return!r.__||Ee(r)})}catch(r){t.some(function(i){i.__h&&(i.__h=[])}),t=[],C.__e(r,n.__v)}}),Qe&&Qe(e,t)},C.unmount=function(e){Xe&&Xe(e);var t,n=e.__c;n&&n.__H&&(n.__H.__.forEach(function(r){try{_e(r)}catch(i){t=i}}),n.__H=void 0,t&&C.__e(t,n.__v))};var tt=typeof requestAnimationFrame=="function";function zt(e){var t,n=function(){clearTimeout(r),tt&&cancelAnimationFrame(t),setTimeout(e)},r=setTimeout(n,100);tt&&(t=requestAnimationFrame(n))}function _e(e){var t=w,n=e.__c;typeof n=="function"&&(e.__c=void 0,n()),w=t}function Ee(e){var t=w;e.__c=e.__(),w=t}function ot(e,t){return!e||e.length!==t.length||t.some(function(n,r){return n!==e[r]})}function rt(e,t){return typeof t=="function"?t(e):t}var Ne="audiences.console.token",V={get:()=>sessionStorage.getItem(Ne)||"",set:e=>sessionStorage.setItem(Ne,e),clear:()=>sessionStorage.removeItem(Ne)};function it(e){let t=0;for(let n of e)if(t+=1,n<"!"||n>"~"){let r=n.codePointAt(0).toString(16).toUpperCase().padStart(4,"0"),i=n===" "?"a space":`U+${r}`;return`This is not a valid token: character ${t} is ${i}, which no token holds (a token is letters, digits and ASCII punctuation). Copy the token again.`}return""}var Q=class extends Error{constructor(t,n){super(n.message||`HTTP ${t}`),this.status=t,this.error=n}describe(){let{reason:t="",message:n=this.message}=this.error;return this.status===403?`Refused by the server (403 ${t}): ${n}`:this.status===401?`Not signed in (401 ${t}): ${n}`:`${n} (${t?`${this.status} ${t}`:this.status})`}},at=()=>{};function st(e){at=e}async function he(e,t,n){let r={Accept:"application/json"},i=V.get();i&&(r.Authorization=`Bearer ${i}`),n!==void 0&&(r["Content-Type"]="application/json");let o;try{o=await fetch(`/console/api${t}`,{method:e,headers:r,body:n===void 0?void 0:JSON.stringify(n),credentials:"omit",cache:"no-store"})}catch(l){throw new Q(0,{reason:"UNREACHABLE",message:`the server could not be reached: ${l.message}`})}let a=await o.text(),d={};try{d=a?JSON.parse(a):{}}catch{d={error:{message:a}}}if(!o.ok){let l=new Q(o.status,d.error||{});throw o.status===401&&at(l),l}return d}var I=e=>he("GET",e),G=(e,t)=>he("POST",e,t??{}),ie=(e,t)=>he("PATCH",e,t),lt=e=>he("DELETE",e),X=e=>{let t=new URLSearchParams;for(let[r,i]of Object.entries(e))i!==""&&i!=null&&t.set(r,i);let n=t.toString();return n?`?${n}`:""};var dt=function(e,t,n,r){var i;t[0]=0;for(var o=1;o<t.length;o++){var a=t[o++],d=t[o]?(t[0]|=a?1:2,n[t[o++]]):t[++o];a===3?r[0]=d:a===4?r[1]=Object.assign(r[1]||{},d):a===5?(r[1]=r[1]||{})[t[++o]]=d:a===6?r[1][t[++o]]+=d+"":a?(i=e.apply(d,dt(e,d,n,["",null])),r.push(i),d[0]?t[0]|=2:(t[o-2]=0,t[o]=i)):r.push(d)}return r},ct=new Map;function ut(e){var t=ct.get(this);return t||(t=new Map,ct.set(this,t)),(t=dt(this,t.get(e)||(t.set(e,t=function(n){for(var r,i,o=1,a="",d="",l=[0],u=function(m){o===1&&(m||(a=a.replace(/^\s*\n\s*|\s*\n\s*$/g,"")))?l.push(0,m,a):o===3&&(m||a)?(l.push(3,m,a),o=2):o===2&&a==="..."&&m?l.push(4,m,0):o===2&&a&&!m?l.push(5,0,!0,a):o>=5&&((a||!m&&o===5)&&(l.push(o,0,a,i),o=6),m&&(l.push(o,m,0,i),o=6)),a=""},_=0;_<n.length;_++){_&&(o===1&&u(),u(_));for(var s=0;s<n[_].length;s++)r=n[_][s],o===1?r==="<"?(u(),l=[l],o=3):a+=r:o===4?a==="--"&&r===">"?(o=1,a=""):a=r+a[0]:d?r===d?d="":a+=r:r==='"'||r==="'"?d=r:r===">"?(u(),o=1):o&&(r==="="?(o=5,i=a,a=""):r==="/"&&(o<5||n[_][s+1]===">")?(u(),o===3&&(l=l[0]),o=l,(l=l[0]).push(2,0,o),o=0):r===" "||r==="	"||r===`
`||r==="\r"?(u(),o=2):a+=r),o===3&&a==="!--"&&(o=4,l=l[0])}return u(),l}(e)),t),arguments,[])).length>1?t:t[0]}var c=ut.bind(pe);var N=e=>e===void 0?"":JSON.stringify(e);function x(e){return e?e.replace("T"," ").replace(/\.\d+Z$/," UTC"):"—"}function $e(e){return e==null?"—":e<1e3?`${e} ms`:e<12e4?`${(e/1e3).toFixed(1)} s`:e<72e5?`${Math.round(e/6e4)} min`:`${(e/36e5).toFixed(1)} h`}var U=e=>e instanceof Q?e.describe():String(e);function ee({notice:e}){if(!e)return null;let t=e.kind==="error";return c`<p class=${`notice ${t?"error":"ok"}`} role=${t?"alert":"status"}>${e.text}</p>`}function z(e,t,n=0){let[r,i]=$({data:null,error:null,loading:!0,deps:null}),o=M(0),a=JSON.stringify(t),d=async()=>{let u=++o.current;try{let _=await e();u===o.current&&i({data:_,error:null,loading:!1,deps:a})}catch(_){u===o.current&&i(s=>({data:s.deps===a?s.data:null,error:_,loading:!1,deps:a}))}};E(()=>{i(u=>({...u,loading:!0})),d()},t),E(()=>{if(!n)return;let u=setInterval(()=>{document.hidden||d()},n);return()=>clearInterval(u)},[...t,n]);let l=r.deps===a;return{data:l?r.data:null,error:l?r.error:null,loading:!l||r.loading,reload:d}}function Pe(e,t,n){E(()=>{let r=setTimeout(e,n);return()=>clearTimeout(r)},t)}function P({error:e}){return e?c`<p class="notice error" role="alert">${U(e)}</p>`:null}function be({points:e,label:t,width:n=320,height:r=90}){if(!e||!e.length)return c`<p class="muted">No size history yet.</p>`;let i={left:34,right:6,top:8,bottom:18},o=e.map(h=>h.size),a=Math.max(1,...o),d=Math.min(0,...o),l=n-i.left-i.right,u=r-i.top-i.bottom,_=h=>i.left+(e.length===1?l:h*l/(e.length-1)),s=h=>i.top+u-(h-d)/(a-d||1)*u,m=e.map((h,v)=>`${_(v).toFixed(1)},${s(h.size).toFixed(1)}`).join(" "),p=e[0].start.slice(5,16).replace("T"," "),f=e[e.length-1].start.slice(5,16).replace("T"," "),g=e[e.length-1].size;return c`
    <svg class="chart" viewBox=${`0 0 ${n} ${r}`} role="img" aria-label=${`${t}: size ${g} now, from ${p} to ${f}`}>
      <title>${t}</title>
      <line x1=${i.left} y1=${i.top+u} x2=${i.left+l} y2=${i.top+u} class="axis" />
      <line x1=${i.left} y1=${i.top} x2=${i.left} y2=${i.top+u} class="axis" />
      <text x=${i.left-4} y=${i.top+8} class="tick" text-anchor="end">${a}</text>
      <text x=${i.left-4} y=${i.top+u} class="tick" text-anchor="end">${d}</text>
      <text x=${i.left} y=${r-4} class="tick">${p}</text>
      <text x=${i.left+l} y=${r-4} class="tick" text-anchor="end">${f}</text>
      <polyline points=${m} class="series" />
      ${e.map((h,v)=>c`<circle cx=${_(v)} cy=${s(h.size)} r="2" class="dot"><title>${`${h.start}: ${h.size} (+${h.entered} −${h.exited})`}</title></circle>`)}
    </svg>`}var De=e=>`/computations/${encodeURIComponent(e.collection)}/${encodeURIComponent(e.key)}`;function Ut({c:e}){let{done:t,total:n}=e.backfill;return e.status!=="BACKFILLING"?c`<span class="muted">${n?`${t} / ${n}`:"—"}</span>`:c`<progress max=${n||1} value=${t} aria-label=${`${e.key} backfill`}>${t} / ${n}</progress>
    <span> ${t} / ${n}</span>`}function Rt({c:e,onChanged:t,setNotice:n}){let[r,i]=$(!1),o=async(l,u,_)=>{try{await _(),n({kind:"ok",text:`${e.key}: ${u}.`})}catch(s){n({kind:"error",text:`${e.key}: could not ${l}. ${U(s)}`})}i(!1),t()},a=()=>e.enabled?o("disable","disabled",()=>ie(De(e),{enabled:!1})):o("enable","enabled",()=>ie(De(e),{enabled:!0})),d=()=>o("delete","deleted",()=>lt(De(e)));return c`
    <tr data-key=${e.key}>
      <th scope="row"><a href=${`#/builder/${e.collection}/${encodeURIComponent(e.key)}`}>${e.name}</a>
        <div class="muted mono">${e.key}</div></th>
      <td>${e.kind==="audience"?"audience":"computed trait"}<div class="muted">${e.collection}</div></td>
      <td><span class=${`status s-${e.status.toLowerCase()}`}>${e.status}</span>
        ${e.error&&c`<div class="error-text">${e.error}</div>`}</td>
      <td class="num size">${e.size}</td>
      <td><${Ut} c=${e} /></td>
      <td>${x(e.last_computed)}</td>
      <td class="chart-cell"><${be} points=${e.sizes} label=${`${e.key} size, last 48 hours`} /></td>
      <td class="actions">
        <button type="button" onClick=${a}>${e.enabled?"Disable":"Enable"}<span class="sr"> ${e.key}</span></button>
        ${r?c`<button type="button" class="danger" onClick=${d}>Confirm delete<span class="sr"> ${e.key}</span></button>
                 <button type="button" onClick=${()=>i(!1)}>Keep</button>`:c`<button type="button" onClick=${()=>i(!0)}>Delete<span class="sr"> ${e.key}</span></button>`}
      </td>
    </tr>`}function pt(){let[e,t]=$(null),{data:n,error:r,reload:i}=z(()=>I("/computations?sizes=hourly"),[],2e3),o=n?n.computations:[];return c`
    <section aria-labelledby="list-title">
      <div class="title-row">
        <h1 id="list-title">Audiences and computed traits</h1>
        <a class="button" href="#/builder/new">New definition</a>
      </div>
      ${n&&c`<p class="muted">Evaluator clock: ${x(n.clock.now)}${n.clock.manual?" (manual)":""}</p>`}
      <${ee} notice=${e} />
      <${P} error=${r} />
      ${n&&!o.length&&c`<p>No definitions yet. <a href="#/builder/new">Write the first one</a>.</p>`}
      ${o.length>0&&c`
        <div class="table-wrap">
          <table class="computations">
            <caption class="sr">Each definition's status, size, backfill and size over time</caption>
            <thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Status</th>
              <th scope="col">Size</th><th scope="col">Backfill</th><th scope="col">Last computed</th>
              <th scope="col">Size, 48 h</th><th scope="col">Actions</th></tr></thead>
            <tbody>${o.map(a=>c`<${Rt} key=${a.id} c=${a} onChanged=${i} setNotice=${t} />`)}</tbody>
          </table>
        </div>`}
    </section>`}var Lt="event('Order Completed').within(30 days).count() >= 1",ae={include_anonymous_users:!1,include_historical_data:!0,backfill_days:0},Ot=["name","description","definition"],Ft=e=>({kind:e.kind,collection:e.collection,key:e.key,name:e.name,description:e.description,definition:e.definition,options:{...ae,...e.options},enabled:e.enabled});function Ht(e,t){let n={};for(let o of Ot)e[o]!==t[o]&&(n[o]=e[o]);let r={...ae,...t.options},i=Object.fromEntries(Object.entries(e.options).filter(([o,a])=>a!==r[o]));return Object.keys(i).length&&(n.options=i),n}var Mt=(e,t)=>e.definition===t.definition&&JSON.stringify({...ae,...e.options})===JSON.stringify({...ae,...t.options});function jt({summary:e}){if(!e)return null;let t=[["Events",e.events],["Properties",e.properties],["Context",e.context_paths],["Traits",e.traits]],n=e.lookback_unbounded?"all history":e.lookback_ms?$e(e.lookback_ms):"none";return c`
    <dl class="summary" aria-label="Dependency summary">
      ${t.map(([r,i])=>c`<dt>${r}</dt><dd>${i.length?i.join(", "):"—"}</dd>`)}
      <dt>Looks back</dt><dd>${n}</dd>
    </dl>`}function Bt({problem:e}){let[t]=e.message.split("; did you mean");return c`
    <div class="problem" role="alert" aria-live="assertive">
      <p><b>${e.reason}</b>${e.line?` at line ${e.line}, column ${e.column}`:""}: ${t}</p>
      ${e.caret_display&&c`<pre class="caret" aria-label="Where the error is">${e.caret_display}</pre>`}
      ${e.hint&&c`<p class="hint">Hint: ${e.hint}</p>`}
    </div>`}var Wt=e=>e?e.identifiers[0]||e.id:"(gone)";function ft({items:e,value:t=!0}){return e.length?c`<ul class="samples">${e.map(n=>c`
    <li><a href=${`#/profiles/${n.profile?.collection||"users"}/${encodeURIComponent(n.profile?.id||"")}`}>${Wt(n.profile)}</a>
      ${t&&n.value!==!0&&c` <span class="mono">${N(n.value)}</span>`}
      ${"old"in n&&c` <span class="mono muted">${N(n.old)} → ${N(n.new)}</span>`}</li>`)}</ul>`:c`<p class="muted">No sample.</p>`}function Vt({diff:e}){return c`
    <section class="diff" aria-labelledby="diff-title">
      <h3 id="diff-title">If saved, against ${e.compare_key} as stored</h3>
      <div class="columns">
        ${["entering","exiting","staying"].map(t=>c`
          <div class=${`outcome ${t}`} data-outcome=${t}>
            <h4>${t[0].toUpperCase()+t.slice(1)}: <span class="count">${e[t]}</span></h4>
            <${ft} items=${e.samples[t]||[]} value=${!1} />
          </div>`)}
      </div>
      ${e.changed>0&&c`<p>${e.changed} staying profiles would change value.</p>`}
    </section>`}function qt({target:e,version:t,onRolledBack:n,setNotice:r}){let{data:i,error:o}=z(()=>I(`${e}/versions`),[e,t]),a=i&&i.versions.find(l=>l.current),d=async l=>{try{let{computation:u,changed:_}=await G(`${e}/rollback`,{version:l});r({kind:"ok",text:_.length?`Rolled back to version ${l}: saved as version ${u.version}; it is ${u.status}.`:`Version ${l} has the current text and options: nothing changed (still version ${u.version}, ${u.status}).`}),n()}catch(u){r({kind:"error",text:`Rollback failed. ${U(u)}`})}};return c`
    <section aria-labelledby="versions-title">
      <h2 id="versions-title">Versions</h2>
      <${P} error=${o} />
      ${i&&c`<div class="table-wrap"><table>
        <thead><tr><th scope="col">Version</th><th scope="col">Saved</th><th scope="col">By</th>
          <th scope="col">Size after backfill</th><th scope="col">Definition</th><th scope="col"></th></tr></thead>
        <tbody>${i.versions.map(l=>c`<tr>
          <th scope="row">${l.version}${l.current?" (current)":""}</th><td>${x(l.created)}</td><td>${l.actor||"—"}</td>
          <td class="num">${l.size_after_backfill??"—"}</td><td><code>${l.definition}</code></td>
          <td>${l.current?"":a&&Mt(l,a)?c`<span class="muted">Same as current</span>`:c`<button type="button" onClick=${()=>d(l.version)}>Roll back to version ${l.version}</button>`}</td>
        </tr>`)}</tbody></table></div>`}
    </section>`}function Jt({target:e,version:t}){let[n,r]=$("hourly"),{data:i,error:o}=z(()=>I(`${e}/sizes?interval=${n}`),[e,n,t]),a=i?i.points.reduce((d,l)=>d+l.entered+l.exited,0):0;return c`
    <section aria-labelledby="sizes-title">
      <h2 id="sizes-title">Size over time</h2>
      <label for="size-interval">Interval</label>
      <select id="size-interval" value=${n} onChange=${d=>r(d.target.value)}>
        <option value="hourly">Hourly, last 48 hours</option><option value="daily">Daily, last 30 days</option></select>
      <${P} error=${o} />
      ${i&&c`<p>Size now <b>${i.size}</b>; ${a} entries and exits in the range shown.</p>
        <${be} points=${i.points} label=${`${i.key} size, ${n}`} width=${640} height=${160} />`}
    </section>`}function _t({args:e}){let t=e.length===2,[n,r]=t?e:["users",""],i=`/computations/${encodeURIComponent(n)}/${encodeURIComponent(r)}`,[o,a]=$({kind:"audience",collection:"users",key:"",name:"",description:"",definition:t?"":Lt,options:ae,enabled:!0}),[d,l]=$(null),[u,_]=$(""),[s,m]=$(null),[p,f]=$(null),[g,h]=$(!1),[v,b]=$(null),[q,R]=$(null),j=M(0),L=M(0),O=A=>k=>a({...o,[A]:k.target.type==="checkbox"?k.target.checked:k.target.value}),B=A=>k=>a({...o,options:{...o.options,[A]:k.target.type==="checkbox"?k.target.checked:parseInt(k.target.value,10)||0}}),F=async(A=null)=>{try{let{computation:k,etag:S}=await I(i);l(k),_(S);let T=Ft(k);a(A?{...T,...A,options:{...T.options,...A.options||{}}}:T)}catch(k){R(k)}};E(()=>{j.current+=1,L.current+=1,f(null),h(!1),m(null),b(null),t&&F()},[i]),Pe(async()=>{let A=++j.current;if(!o.definition.trim()){m(null);return}let k;try{k=await G("/validate",{kind:o.kind,collection:o.collection,key:o.key,definition:o.definition})}catch(S){k={valid:!1,failure:S}}A===j.current&&(m(k),k.valid||(L.current+=1,f(null),h(!1)))},[o.definition,o.kind,o.collection,o.key],300);let W=async(A=t,k=!1)=>{let S=++L.current;h(!0);let T;try{T=await G("/preview",{kind:o.kind,collection:o.collection,definition:o.definition,options:o.options,sample_size:10,compare_key:A?r:""})}catch(Z){T={failure:Z}}S===L.current&&(f(k&&T.diff?{...T,diff:null}:T),h(!1))};Pe(()=>{s&&s.valid&&W()},[s,JSON.stringify(o.options)],400);let[D,J]=$(0);E(()=>{D&&s&&s.valid&&W()},[D]);let xt=async A=>{A.preventDefault();let k=t&&d?Ht(o,d):{};try{if(t){if(!Object.keys(k).length){b({kind:"ok",text:"Nothing changed: not saved."});return}let{computation:S,etag:T}=await ie(i,{...k,etag:u});l(S),_(T),b({kind:"ok",text:`Saved ${S.key} as version ${S.version}; it is ${S.status}.`}),f(Z=>Z&&Z.diff?{...Z,diff:null}:Z),W(!0,!0)}else{let{computation:S}=await G("/computations",{kind:o.kind,collection:o.collection,key:o.key,name:o.name,description:o.description,definition:o.definition,enabled:o.enabled,options:o.options});location.hash=`#/audiences/${encodeURIComponent(S.key)}`}}catch(S){if(S.status===409&&S.error.reason==="EDIT_CONFLICT"){f(null),await F(k),J(T=>T+1),b({kind:"error",text:`Not saved: ${r} was saved by someone else since you loaded it. The saved definition has been loaded again with your edits kept in the form; check the diff, then save again.`});return}b({kind:"error",text:`Not saved. ${U(S)}`}),S.error&&S.error.definition&&m({valid:!1,error:S.error.definition})}};return c`
    <section aria-labelledby="builder-title">
      <h1 id="builder-title">${t?`Edit ${r}`:"New audience or computed trait"}</h1>
      <${P} error=${q} />
      <form class="builder" onSubmit=${xt}>
        <div class="fields">
          <label for="f-kind">Kind</label>
          <select id="f-kind" value=${o.kind} onChange=${O("kind")} disabled=${t}>
            <option value="audience">Audience</option><option value="computed_trait">Computed trait</option></select>
          <label for="f-collection">Collection</label>
          <select id="f-collection" value=${o.collection} onChange=${O("collection")} disabled=${t}>
            <option value="users">Users</option><option value="accounts">Accounts</option></select>
          <label for="f-key">Key</label>
          <input id="f-key" value=${o.key} onInput=${O("key")} readOnly=${t} required pattern="[a-z][a-z0-9_]*"
                 aria-describedby="f-key-help" />
          <span id="f-key-help" class="help">snake_case: a–z, 0–9 and _, starting with a letter; fixed once saved.</span>
          <label for="f-name">Name</label>
          <input id="f-name" value=${o.name} onInput=${O("name")} />
          <label for="f-description">Description</label>
          <input id="f-description" value=${o.description} onInput=${O("description")} />
          <label class="check"><input type="checkbox" checked=${o.options.include_anonymous_users}
            onChange=${B("include_anonymous_users")} /> Include anonymous users</label>
          <label class="check"><input type="checkbox" checked=${o.options.include_historical_data}
            onChange=${B("include_historical_data")} /> Include historical data</label>
          <label for="f-backfill-days">Backfill days</label>
          <input id="f-backfill-days" type="number" min="0" step="1" value=${o.options.backfill_days}
                 onInput=${B("backfill_days")} aria-describedby="f-backfill-help" />
          <span id="f-backfill-help" class="help">With historical data: only events from this many days before creation on (0: all).</span>
          ${!t&&c`<label class="check"><input type="checkbox" checked=${o.enabled} onChange=${O("enabled")} /> Enabled</label>`}
        </div>
        <label for="f-definition">Definition</label>
        <textarea id="f-definition" class="mono" rows="6" spellcheck=${!1} value=${o.definition}
                  onInput=${O("definition")} aria-describedby="validation"></textarea>
        <div id="validation" class="validation" aria-live="polite">
          ${s&&s.valid&&c`<p class="valid">Valid.</p>`}
          ${s&&s.error&&c`<${Bt} problem=${s.error} />`}
          ${s&&s.failure&&c`<${P} error=${s.failure} />`}
          ${s&&s.summary&&c`<h2>Reads</h2><${jt} summary=${s.summary} />`}
        </div>
        <div class="buttons">
          <button type="button" onClick=${()=>W()} disabled=${g}>Preview</button>
          <button type="submit" class="primary">${t?"Save changes":"Save"}</button>
          ${t&&c`<a href="#/builder/new">New definition</a>`}
        </div>
        <${ee} notice=${v} />
      </form>
      <section class="preview" aria-labelledby="preview-title" aria-live="polite" aria-busy=${g}>
        <h2 id="preview-title">Preview</h2>
        ${!p&&c`<p class="muted">A valid definition is previewed over every profile as it stands now.</p>`}
        ${p&&p.failure&&c`<${P} error=${p.failure} />`}
        ${p&&!p.failure&&c`
          <p class="preview-count"><b class="count">${p.count}</b> ${o.kind==="audience"?"profiles match":"profiles have a value"} (evaluated ${x(p.evaluated)})</p>
          <${ft} items=${p.samples} />
          ${p.diff&&c`<${Vt} diff=${p.diff} />`}`}
      </section>
      ${t&&d&&c`<${Jt} target=${i} version=${d.version} />`}
      ${t&&d&&c`<${qt} target=${i} version=${d.version} onRolledBack=${F} setNotice=${b} />`}
    </section>`}var Kt=50;function Gt(e){return e.change.type==="changed"?c`changed <span class="mono">${N(e.change.old)} → ${N(e.change.new)}</span>`:e.change.type}function mt(e){let[t,n]=e.split("#")[0].split(/\?(.*)/s);return n===void 0?t:`${t}?${n.split("&").filter(r=>r.includes("=")).map(r=>`${r.split("=")[0]}=…`).join("&")}`}function Zt(e){let t=e.config;return e.kind==="webhook"?mt(t.url||""):e.kind==="segment"?mt(t.base_url||""):e.kind==="csv"?t.directory:e.kind==="postgres"?`tables ${t.schema}.${t.table_prefix}<collection>_<key>`:e.kind==="grpc_feed"?"a change feed, read with ListChanges and WatchChanges":e.key}function Yt({items:e}){return e.length?c`<div class="table-wrap"><table class="connections">
    <thead><tr><th scope="col">Definition</th><th scope="col">Phase</th><th scope="col">Pending</th>
      <th scope="col">Delivered</th><th scope="col">Retrying</th><th scope="col">Dead</th><th scope="col">Lag</th>
      <th scope="col">Last delivery</th><th scope="col">Last failure</th></tr></thead>
    <tbody>${e.map(t=>c`<tr>
      <th scope="row">${t.computation.key} <span class="muted">${t.computation.collection}</span></th>
      <td>${t.phase}</td><td class="num">${t.pending}</td><td class="num">${t.delivered}</td>
      <td class="num">${t.retrying}</td><td class="num">${t.dead}</td><td>${$e(t.lag_ms)}</td>
      <td>${x(t.last_delivery)}</td>
      <td>${t.last_error?c`<span class="error-text">${t.last_error}</span> <span class="muted">${x(t.last_error_at)}</span>`:"—"}</td>
    </tr>`)}</tbody></table></div>`:c`<p class="muted">Nothing connected.</p>`}function Qt({destination:e,onRedriven:t,setNotice:n}){let[r,i]=$({letters:[],next:""}),[o,a]=$(null),d=e.dead_letters.map(f=>f.id).join(",");E(()=>{i({letters:[],next:""})},[e.key,d]);let l=[...e.dead_letters,...r.letters],u=r.letters.length?r.next:e.dead_letters_next,_=e.dead_letters_total,s=async()=>{try{let f=await I(`/destinations/${encodeURIComponent(e.key)}/dead-letters${X({after:u,limit:Kt})}`);i({letters:[...r.letters,...f.dead_letters],next:f.next}),a(null)}catch(f){a(f)}},m=f=>i(g=>({...g,letters:f.length?g.letters.filter(h=>!f.includes(h.id)):[]})),p=async f=>{try{let{redriven:g}=await G(`/destinations/${encodeURIComponent(e.key)}/redrive`,{ids:f});n({kind:"ok",text:`${e.key}: ${g} dead letter${g===1?"":"s"} put back in the queue.`}),m(f)}catch(g){n({kind:"error",text:`${e.key}: redrive failed. ${U(g)}`}),g.error&&g.error.reason==="DEAD_LETTER_NOT_FOUND"&&m(f)}t()};return c`
    <h3>Dead letters (${_})</h3>
    ${!l.length&&c`<p class="muted">None.</p>`}
    ${l.length>0&&l.length<_&&c`<p class="muted">Showing the oldest ${l.length} of ${_}.</p>`}
    ${l.length>0&&c`
      <button type="button" onClick=${()=>p([])}>Redrive all<span class="sr"> of ${e.key}</span></button>
      <div class="table-wrap"><table class="dead-letters">
        <thead><tr><th scope="col">Id</th><th scope="col">Definition</th><th scope="col">Change</th><th scope="col">Profile</th>
          <th scope="col">Attempts</th><th scope="col">Last error</th><th scope="col">Parked</th><th scope="col"></th></tr></thead>
        <tbody>${l.map(f=>c`<tr data-id=${f.id}>
          <th scope="row" class="mono">${f.id}</th><td>${f.computation.key}</td><td class="change">${Gt(f)}</td>
          <td><a href=${`#/profiles/${f.computation.collection}/${encodeURIComponent(f.profile_id)}`}>${f.profile_id}</a></td>
          <td class="num">${f.attempts}</td><td class="error-text">${f.last_error}</td><td>${x(f.dead_at)}</td>
          <td><button type="button" onClick=${()=>p([f.id])}>Redrive<span class="sr"> ${f.id}</span></button></td>
        </tr>`)}</tbody></table></div>
      ${u&&c`<button type="button" class="more" onClick=${s}>Show more<span class="sr"> dead letters of ${e.key}</span></button>`}
      <${P} error=${o} />`}`}function ht(){let[e,t]=$(null),{data:n,error:r,reload:i}=z(()=>I("/destinations"),[],3e3),o=n?n.destinations:[];return c`
    <section aria-labelledby="destinations-title">
      <div class="title-row">
        <h1 id="destinations-title">Destinations</h1>
        <button type="button" onClick=${i}>Refresh</button>
      </div>
      <${ee} notice=${e} />
      <${P} error=${r} />
      ${n&&!o.length&&c`<p>No destinations. Create one with <code>audiences destinations create</code>.</p>`}
      ${o.map(a=>c`
        <article class="destination" data-key=${a.key} aria-labelledby=${`d-${a.key}`}>
          <h2 id=${`d-${a.key}`}>${a.name||a.key} <span class="muted">${a.kind}${a.enabled?"":" · disabled"}</span></h2>
          <p class="muted mono address">${Zt(a)}</p>
          <h3>Connections</h3>
          <${Yt} items=${a.connections} />
          <${Qt} destination=${a} onRedriven=${i} setNotice=${t} />
        </article>`)}
    </section>`}function Xt({stream:e}){return c`
    <div class="stream">
      <p><b>${e.event}</b>: ${e.seen} seen, ${e.count} kept</p>
      ${e.filters.length>0&&c`<ol class="filters">${e.filters.map(t=>c`
        <li><code>${t.filter}</code> leaves ${t.remaining}</li>`)}</ol>`}
      ${e.events.length>0&&c`<div class="table-wrap"><table class="evidence">
        <thead><tr><th scope="col">Time</th><th scope="col">Message</th><th scope="col">Value</th><th scope="col">Read</th></tr></thead>
        <tbody>${e.events.map(t=>c`<tr>
          <td>${x(t.timestamp)}</td><td class="mono">${t.message_id}</td><td class="mono">${N(t.value)}</td>
          <td class="mono">${Object.entries(t.read).map(([n,r])=>`${n} = ${N(r)}`).join("; ")}</td></tr>`)}
        </tbody></table></div>`}
    </div>`}function Ae({node:e}){let t=e.value===!0?"holds":e.value===!1?"fails":"value";return c`
    <li class=${`node ${t}`}>
      <span class="verdict">${e.value===!0?"✓":e.value===!1?"✗":"="}</span>
      <code>${e.text}</code> <span class="mono value">${N(e.value)}</span>
      ${e.trait&&c` <span class="muted">(${e.trait.class.replace("_"," ")} ${e.trait.key})</span>`}
      ${e.stream&&c`<${Xt} stream=${e.stream} />`}
      ${e.users&&c`<p class="muted">${e.users_satisfying} of ${e.users_total} linked users satisfy it</p>
        <ul>${e.users.map(n=>c`<li>${n.profile?.identifiers[0]||n.profile?.id}: ${n.satisfied?"yes":"no"}
          <ul class="tree"><${Ae} node=${n.node} /></ul></li>`)}</ul>`}
      ${e.children.length>0&&c`<ul class="tree">${e.children.map(n=>c`<${Ae} node=${n} />`)}</ul>`}
    </li>`}function $t({collection:e,definitionKey:t,address:n,onClose:r}){let i=M(null);E(()=>i.current?.focus(),[t,n]);let{data:o,error:a}=z(()=>I(`/explain/${encodeURIComponent(e)}/${encodeURIComponent(t)}${X({profile:n})}`),[e,t,n]);return c`
    <section class="explain" aria-labelledby="explain-title" tabindex="-1" ref=${i}>
      <div class="title-row">
        <h2 id="explain-title">Why: ${t}</h2>
        <button type="button" onClick=${r}>Close</button>
      </div>
      <${P} error=${a} />
      ${o&&c`
        <p>Value <b class="mono">${N(o.value)}</b> at ${x(o.at)}; stored <span class="mono">${N(o.stored)}</span>
          ${o.pending?" (waiting for a tick)":""}${o.anonymous_excluded?"; anonymous users are left out":""}</p>
        <pre class="definition">${o.definition.text}</pre>
        <ul class="tree root"><${Ae} node=${o.root} /></ul>
        <p class="next">${o.next_change.summary}</p>`}
    </section>`}var bt=(e,t,n,r={})=>I(`/profiles/${e}/${n}${X({address:t,...r})}`);function te({collection:e,address:t,name:n,params:r={},render:i,title:o}){let[a,d]=$([""]),l=a[a.length-1],u=JSON.stringify(r);E(()=>d([""]),[e,t,u]);let{data:_,error:s}=z(()=>bt(e,t,n,{...r,next:l}),[e,t,u,l]);return c`
    <section class="part" aria-label=${o}>
      <${P} error=${s} />
      ${_&&(_.items.length?i(_.items):c`<p class="muted">None.</p>`)}
      <div class="pager">
        ${a.length>1&&c`<button type="button" onClick=${()=>d(a.slice(0,-1))}>Previous page</button>`}
        ${_&&_.next&&c`<button type="button" onClick=${()=>d([...a,_.next])}>Next page</button>`}
      </div>
    </section>`}function en({collection:e,address:t}){let[n,r]=$("");return c`
    <h2>Traits</h2>
    <label for="trait-class">Class</label>
    <select id="trait-class" value=${n} onChange=${i=>r(i.target.value)}>
      <option value="">All</option><option value="custom">Custom</option>
      <option value="computed_trait">Computed</option><option value="audience">Audience</option></select>
    <${te} collection=${e} address=${t} name="traits" params=${{class:n,limit:50}} title="Traits"
      render=${i=>c`<div class="table-wrap"><table><thead><tr><th scope="col">Key</th><th scope="col">Value</th>
        <th scope="col">Class</th><th scope="col">Updated</th></tr></thead><tbody>${i.map(o=>c`
        <tr><th scope="row" class="mono">${o.key}</th><td class="mono">${N(o.value)}</td><td>${o.class.replace("_"," ")}</td>
          <td>${x(o.updated)}</td></tr>`)}</tbody></table></div>`} />`}var tn=Date.parse("9999-12-31T00:00:00Z"),nn=e=>e&&Date.parse(`${e}T00:00:00Z`)<tn?new Date(Date.parse(`${e}T00:00:00Z`)+864e5).toISOString().slice(0,10):"";function on({collection:e,address:t}){let[n,r]=$({include:"",exclude:"",start:"",end:"",sort:"desc"}),[i,o]=$(n),a=d=>l=>r({...n,[d]:l.target.value});return c`
    <h2>Events</h2>
    <form class="filters-form" onSubmit=${d=>{d.preventDefault(),o(n)}}>
      <label>Only events <input value=${n.include} onInput=${a("include")} placeholder="Signed Up, Order Completed" /></label>
      <label>Except <input value=${n.exclude} onInput=${a("exclude")} /></label>
      <label>From (UTC) <input type="date" value=${n.start} onInput=${a("start")} /></label>
      <label>Until (UTC, that day included) <input type="date" value=${n.end} onInput=${a("end")} /></label>
      <label>Order <select value=${n.sort} onChange=${a("sort")}><option value="desc">Newest first</option>
        <option value="asc">Oldest first</option></select></label>
      <button type="submit">Filter events</button>
    </form>
    <${te} collection=${e} address=${t} name="events" params=${{...i,end:nn(i.end),limit:20}} title="Events"
      render=${d=>c`<ol class="events">${d.map(l=>c`<li>
        <b>${l.event||l.type}</b> <span class="muted">${l.type} · ${x(l.timestamp)} · ${l.message_id}</span>
        <details><summary>Properties and context</summary><pre class="mono">${l.properties}</pre><pre class="mono">${l.context}</pre></details>
      </li>`)}</ol>`} />`}function rn(e){let t=e.indexOf(":");return t<0?e.trim():`${e.slice(0,t).trim()}${e.slice(t)}`}function vt({args:e}){let[t="users",n=""]=e,[r,i]=$({collection:t,address:n}),[o,a]=$(null);E(()=>{i({collection:t,address:n}),a(null)},[t,n]);let d=p=>{p.preventDefault(),location.hash=`#/profiles/${r.collection}/${encodeURIComponent(rn(r.address))}`},l=n!=="",u=z(()=>l?bt(t,n,"metadata"):Promise.resolve(null),[t,n]),s=(z(()=>I("/computations"),[]).data?.computations||[]).filter(p=>p.collection===t),m={collection:t,address:n};return c`
    <section aria-labelledby="profiles-title">
      <h1 id="profiles-title">Profile explorer</h1>
      <form class="lookup" onSubmit=${d} role="search">
        <label for="p-collection">Collection</label>
        <select id="p-collection" value=${r.collection} onChange=${p=>i({...r,collection:p.target.value})}>
          <option value="users">Users</option><option value="accounts">Accounts</option></select>
        <label for="p-address">Profile (type:value or prf_…)</label>
        <input id="p-address" value=${r.address} required placeholder="email:ada@example.com"
               onInput=${p=>i({...r,address:p.target.value})} />
        <button type="submit">Find</button>
      </form>
      ${l&&c`
        <${P} error=${u.error} />
        ${u.data&&c`
          <p class="profile-head">Profile <b class="mono">${u.data.profile_id}</b> · created ${x(u.data.created)} ·
            last message ${x(u.data.last_message)}${u.data.merged.length?` · merged from ${u.data.merged.join(", ")}`:""}</p>
          ${o&&c`<${$t} collection=${t} definitionKey=${o} address=${n} onClose=${()=>a(null)} />`}
          <div class="grid">
            <div>
              <h2>Audiences</h2>
              <${te} ...${m} name="memberships" params=${{limit:50}} title="Audience memberships"
                render=${p=>c`<ul class="memberships">${p.map(f=>c`<li data-key=${f.key}>
                  <b>${f.name}</b> <span class="muted mono">${f.key}</span> · since ${x(f.entered)}
                  <button type="button" onClick=${()=>a(f.key)}>Why<span class="sr"> is this profile in ${f.key}</span></button></li>`)}</ul>`} />
              <form class="why-other" onSubmit=${p=>{p.preventDefault(),a(p.target.elements.other.value)}}>
                <label for="why-other">Explain any definition</label>
                <select id="why-other" name="other">${s.map(p=>c`<option value=${p.key}>${p.key}</option>`)}</select>
                <button type="submit" disabled=${!s.length}>Explain</button>
              </form>
              <h2>Membership history</h2>
              <${te} ...${m} name="history" params=${{limit:20}} title="Membership history"
                render=${p=>c`<ol class="history">${p.map(f=>c`<li>
                  ${x(f.at)} · <b>${f.change}</b> ${f.key} <span class="mono muted">${N(f.old)} → ${N(f.new)}</span></li>`)}</ol>`} />
              <h2>Identifiers</h2>
              <${te} ...${m} name="identifiers" params=${{limit:50}} title="Identifiers"
                render=${p=>c`<ul>${p.map(f=>c`<li class="mono">${f.type}:${f.value}
                  <span class="muted"> · ${x(f.added)}</span></li>`)}</ul>`} />
              <h2>Links</h2>
              <${te} ...${m} name="links" params=${{limit:50}} title="Linked profiles"
                render=${p=>c`<ul>${p.map(f=>c`<li>
                  <a href=${`#/profiles/${f.collection}/${encodeURIComponent(f.id)}`}>${f.identifiers[0]||f.id}</a>
                  <span class="muted"> · ${f.collection} · linked ${x(f.linked)}</span></li>`)}</ul>`} />
            </div>
            <div>
              <${en} ...${m} />
              <${on} ...${m} />
            </div>
          </div>`}`}
    </section>`}function gt(){let e=location.hash.replace(/^#\/?/,"").split("/").map(decodeURIComponent);return{page:e[0]||"audiences",args:e.slice(1)}}function an({onSession:e,reason:t}){let[n,r]=$(""),[i,o]=$(t||"");return c`
    <main class="signin">
      <h1>Audiences console</h1>
      <form onSubmit=${async d=>{d.preventDefault();let l=n.trim(),u=it(l);if(u){o(u);return}V.set(l);try{e(await I("/session"))}catch(_){V.clear(),o(U(_))}}}>
        <label for="token">Token (admin, or read for read-only pages)</label>
        <input id="token" name="token" type="password" autocomplete="off" required value=${n}
               onInput=${d=>r(d.target.value)} />
        <button type="submit">Sign in</button>
      </form>
      <p class="muted">The token stays in this tab (sessionStorage) and is sent only to this server.</p>
      ${i&&c`<p class="notice error" role="alert">${i}</p>`}
    </main>`}function sn(e){e.preventDefault(),document.getElementById("main")?.focus()}var yt=[["audiences","Audiences & traits"],["builder","Builder"],["profiles","Profiles"],["destinations","Destinations"]];function ln({session:e,onSignOut:t}){let[n,r]=$(gt());E(()=>{let l=()=>r(gt());return addEventListener("hashchange",l),()=>removeEventListener("hashchange",l)},[]);let{page:i,args:o}=n,a=M(!0);E(()=>{let l=(yt.find(([u])=>u===i)||[i,i])[1];if(document.title=`${l} · Audiences console`,a.current){a.current=!1;return}document.getElementById("main")?.focus()},[i,o.join("/")]);let d={audiences:()=>c`<${pt} session=${e} />`,builder:()=>c`<${_t} session=${e} args=${o} key=${o.join("/")} />`,profiles:()=>c`<${vt} session=${e} args=${o} />`,destinations:()=>c`<${ht} session=${e} />`}[i];return c`
    <header class="top">
      <a class="skip" href="#main" onClick=${sn}>Skip to content</a>
      <strong class="brand">Audiences</strong>
      <nav aria-label="Pages">
        ${yt.map(([l,u])=>c`
          <a href=${`#/${l==="builder"?"builder/new":l}`} aria-current=${i===l?"page":void 0}>${u}</a>`)}
      </nav>
      <span class="who">Space <b>${e.space}</b> · <span class="scope">${e.scope}</span> token</span>
      <button type="button" class="link" onClick=${t}>Sign out</button>
    </header>
    ${!e.can_write&&c`
      <p class="banner" role="note">Signed in with a read token: these pages are read-only, and the server refuses any change.</p>`}
    <main id="main" tabindex="-1">${d?d():c`<p role="alert">No page ${i}.</p>`}</main>`}function cn(){let[e,t]=$(null),[n,r]=$(!!V.get()),[i,o]=$("");E(()=>{st(d=>{V.clear(),t(null),o(U(d))}),V.get()&&I("/session").then(t,d=>o(U(d))).finally(()=>r(!1))},[]);let a=()=>{V.clear(),t(null),o("")};return n?c`<p>Checking the session…</p>`:e?c`<${ln} session=${e} onSignOut=${a} />`:c`<${an} onSession=${t} reason=${i} />`}var kt=document.getElementById("app");kt.textContent="";Ce(c`<${cn} />`,kt);
